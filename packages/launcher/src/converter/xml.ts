// A minimal XML element tree and serializer for domain XML: attributes in insertion order, text escaped, two-space
// indentation, so the converter's output is stable enough for golden files.

export interface XmlElement {
  name: string;
  attrs: Record<string, string | number | undefined>;
  children: (XmlElement | string)[];
}

type Child = XmlElement | string | number | undefined | false | null;

/** An element; attributes whose value is undefined are left out, and so are falsy children. */
export function el(
  name: string,
  attrs: XmlElement['attrs'] = {},
  ...children: (Child | Child[])[]
): XmlElement {
  const kids: (XmlElement | string)[] = [];
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    kids.push(typeof c === 'number' ? String(c) : c);
  }
  return { name, attrs, children: kids };
}

function escape(text: string, quote: boolean): string {
  let out = text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  if (quote) out = out.replaceAll("'", '&apos;').replaceAll('"', '&quot;');
  return out;
}

export function serialize(element: XmlElement, indent = 0): string {
  const pad = '  '.repeat(indent);
  const attrs = Object.entries(element.attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}='${escape(String(v), true)}'`)
    .join('');
  if (element.children.length === 0) return `${pad}<${element.name}${attrs}/>\n`;
  if (element.children.every((c) => typeof c === 'string')) {
    return `${pad}<${element.name}${attrs}>${escape(element.children.join(''), false)}</${element.name}>\n`;
  }
  let out = `${pad}<${element.name}${attrs}>\n`;
  for (const child of element.children) {
    out += typeof child === 'string' ? `${pad}  ${escape(child, false)}\n` : serialize(child, indent + 1);
  }
  return `${out}${pad}</${element.name}>\n`;
}
