/**
 * Referral codes (PRODUCT §5): short, unambiguous and not guessable in sequence. A code is the
 * HMAC-SHA256 of the fan id under the program's salt, in Crockford base 32 (no I, L, O or U), so
 * it is the same on every replay and nobody derives one fan's code from another's.
 *
 * @example referralCode('', 'u42') // 10 characters such as '7KQ2M9XD4T'
 */
import { hmac, type _HMAC } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const CODE_LENGTH = 10;
const encoder = new TextEncoder();

// The HMAC keyed with the last salt used, copied per code into one reused instance (keying hashes
// two blocks every time; a new instance, digest and encoded id per code took three times as long).
// Any hash: the type parameter is not used here.
type Mac = _HMAC<any>;
let keyed: { salt: string; mac: Mac } | null = null;
let scratch: Mac | undefined;
const digest = new Uint8Array(32);
const idBytes = new Uint8Array(512);

/** The UTF-8 bytes of `text`, in the reused buffer when they fit. */
function utf8(text: string): Uint8Array {
  const { read, written } = encoder.encodeInto(text, idBytes);
  return read === text.length ? idBytes.subarray(0, written) : encoder.encode(text);
}

/** The code of `fanId`; `attempt` > 0 gives the alternatives used when a code is taken. */
export function referralCode(salt: string, fanId: string, attempt = 0): string {
  if (keyed?.salt !== salt) keyed = { salt, mac: hmac.create(sha256, encoder.encode(salt)) as Mac };
  const mac = keyed.mac._cloneInto(scratch);
  scratch = mac;
  mac.update(utf8(attempt === 0 ? fanId : `${fanId}#${attempt}`)).digestInto(digest);
  // 10 symbols of 5 bits from the first 50 bits of the digest.
  let code = '';
  let bits = 0;
  let buffer = 0;
  for (let i = 0; code.length < CODE_LENGTH; i++) {
    buffer = (buffer << 8) | digest[i];
    bits += 8;
    while (bits >= 5 && code.length < CODE_LENGTH) {
      bits -= 5;
      code += ALPHABET[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  return code;
}

/** What a person typed, read the Crockford way: case-insensitive, O as 0, I and L as 1, dashes and spaces ignored. */
export function normalizeCode(text: string): string {
  return text.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}

/** True when `text` could be a code (so that fan ids are not mistaken for codes needlessly). */
export function looksLikeCode(text: string): boolean {
  const normalized = normalizeCode(text);
  if (normalized.length !== CODE_LENGTH) return false;
  for (const char of normalized) if (!ALPHABET.includes(char)) return false;
  return true;
}
