/** The generated part of docs/options.md: the `milterkit serve` options table, between markers. */
import { serveOptionsMarkdown } from './serve-options.js';

const BEGIN = '<!-- generated from src/cli/serve-options.ts by scripts/options-doc.mjs: do not edit -->';
const END = '<!-- end of generated table -->';

/** `text` with the part between the markers replaced by the current table. @throws Error without the markers */
export function replaceGeneratedTable(text: string): string {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/options.md lacks the markers ${BEGIN} and ${END}`);
  return `${text.slice(0, start)}${BEGIN}\n${serveOptionsMarkdown()}${text.slice(end)}`;
}
