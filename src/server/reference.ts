/**
 * The browsable API reference at `/docs`: rendered on the server from the OpenAPI document, one
 * self-contained page (no script, no asset from elsewhere), so it works on a closed network.
 */
interface Operation {
  summary?: string;
  description?: string;
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: unknown }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
  security?: unknown[];
}

interface Document {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

const escape = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
const json = (value: unknown) => `<pre>${escape(JSON.stringify(value, null, 2))}</pre>`;

export function renderReference(document: Document): string {
  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => {
      const parameters = (operation.parameters ?? [])
        .map((p) => `<tr><td><code>${escape(p.name)}</code></td><td>${p.in}</td><td>${p.required ? 'yes' : ''}</td><td>${escape(p.description ?? '')}</td></tr>`)
        .join('');
      const body = operation.requestBody?.content?.['application/json']?.schema;
      const responses = Object.entries(operation.responses ?? {})
        .map(([status, response]) => `<li><b>${status}</b> ${escape(response.description ?? '')}</li>`)
        .join('');
      const id = `${method}-${path}`.replace(/[^a-z0-9]+/gi, '-');
      return `<section id="${id}"><h2><span class="m ${method}">${method.toUpperCase()}</span> <code>${escape(path)}</code></h2>
<p>${escape(operation.summary ?? '')}${operation.security ? ' <span class="auth">Bearer key</span>' : ''}</p>
${operation.description ? `<p>${escape(operation.description)}</p>` : ''}
${parameters ? `<table><tr><th>parameter</th><th>in</th><th>required</th><th></th></tr>${parameters}</table>` : ''}
${body ? `<details><summary>request body</summary>${json(body)}</details>` : ''}
<ul>${responses}</ul></section>`;
    }),
  );
  const schemas = Object.entries(document.components?.schemas ?? {})
    .map(([name, schema]) => `<details id="schema-${escape(name)}"><summary>${escape(name)}</summary>${json(schema)}</details>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(document.info.title)} ${escape(document.info.version)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2328}code,pre{font:13px ui-monospace,monospace}
pre{background:#f6f8fa;padding:.75rem;overflow:auto}section{border-top:1px solid #d0d7de;padding:.5rem 0}.m{display:inline-block;min-width:4.5rem;text-align:center;border-radius:4px;color:#fff;font-size:13px;padding:2px 6px}
.get{background:#0969da}.post{background:#1a7f37}.auth{font-size:12px;border:1px solid #d0d7de;border-radius:4px;padding:1px 4px}table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:2px 8px;text-align:left}</style></head>
<body><h1>${escape(document.info.title)} <small>${escape(document.info.version)}</small></h1><p>${escape(document.info.description ?? '')}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
${operations.join('\n')}<h2>Schemas</h2>${schemas}</body></html>`;
}
