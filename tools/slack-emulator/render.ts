/** Block Kit to plain text, for transcripts and assertions. Not a full renderer: the parts we use. */
export function renderBlocks(blocks: unknown[] | undefined, fallback = ''): string {
  if (!Array.isArray(blocks) || blocks.length === 0) return fallback;
  const lines: string[] = [];
  for (const raw of blocks) {
    const b = raw as Record<string, any>;
    switch (b.type) {
      case 'header':
        lines.push(`## ${b.text?.text ?? ''}`);
        break;
      case 'section': {
        if (b.text?.text) lines.push(b.text.text);
        if (Array.isArray(b.fields)) lines.push(b.fields.map((f: any) => f.text).join(' | '));
        if (b.accessory?.type === 'button') lines.push(`[${b.accessory.text?.text}]`);
        if (b.accessory?.type === 'checkboxes') lines.push(renderCheckboxes(b.accessory));
        break;
      }
      case 'context':
        lines.push((b.elements ?? []).map((e: any) => e.text ?? e.alt_text ?? '').join(' '));
        break;
      case 'divider':
        lines.push('---');
        break;
      case 'actions':
        lines.push(
          (b.elements ?? [])
            .map((e: any) => (e.type === 'checkboxes' ? renderCheckboxes(e) : `[${e.text?.text ?? e.type}]`))
            .join(' '),
        );
        break;
      case 'data_visualization': {
        // A chart as text: its title, then each series' points.
        lines.push(`📈 ${b.title ?? ''} (${b.chart?.type ?? '?'} chart)`);
        for (const s of b.chart?.series ?? [])
          lines.push(`  ${s.name}: ${(s.data ?? []).map((p: any) => `${p.label} ${p.value}`).join(', ')}`);
        for (const s of b.chart?.segments ?? []) lines.push(`  ${s.label}: ${s.value}`);
        break;
      }
      default:
        lines.push(`<${b.type}>`);
    }
  }
  return lines.join('\n');
}

function renderCheckboxes(e: any): string {
  const checked = new Set((e.initial_options ?? []).map((o: any) => o.value));
  return (e.options ?? [])
    .map((o: any) => `${checked.has(o.value) ? '[x]' : '[ ]'} ${o.text?.text}`)
    .join('\n');
}
