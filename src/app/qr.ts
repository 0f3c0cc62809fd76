/**
 * QR codes of referral links for the share poster (PNG or SVG), with the `qrcode` library.
 */
import { writeFile } from 'node:fs/promises';
import QRCode from 'qrcode';
import { UsageError } from './errors.js';

export type QrFormat = 'png' | 'svg';

export async function qrImage(text: string, format: QrFormat): Promise<Buffer> {
  // Level M survives a poster's print and a phone camera; 4 modules of quiet zone is the standard.
  if (format === 'svg') return Buffer.from(await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 }));
  return QRCode.toBuffer(text, { type: 'png', errorCorrectionLevel: 'M', margin: 4, scale: 8 });
}

export async function writeQrFile(file: string, text: string): Promise<void> {
  const format = file.toLowerCase().endsWith('.svg') ? 'svg' : file.toLowerCase().endsWith('.png') ? 'png' : null;
  if (!format) throw new UsageError(`--out ${file}: name a .png or .svg file`);
  await writeFile(file, await qrImage(text, format));
}
