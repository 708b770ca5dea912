// A grouped bar chart as SVG, written by hand (no dependency): per-class recall for each loss.

export interface ChartSeries {
  name: string;
  values: number[];
}

const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Bars of series[i].values[k] (in [0, 1]) grouped by k, with an axis, gridlines and a legend. */
export function barChartSvg(title: string, groupLabels: string[], series: ChartSeries[], yLabel: string): string {
  const width = 960;
  const height = 420;
  const left = 56;
  const right = 200;
  const top = 40;
  const bottom = 56;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const groupW = plotW / groupLabels.length;
  const barW = (groupW * 0.84) / series.length;
  const y = (v: number): number => top + plotH * (1 - Math.max(0, Math.min(1, v)));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = i / 5;
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  parts.push(`<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  groupLabels.forEach((label, g) => {
    const x0 = left + g * groupW + groupW * 0.08;
    series.forEach((s, i) => {
      const v = s.values[g];
      const h = Number.isFinite(v) ? plotH * Math.max(0, Math.min(1, v)) : 0;
      parts.push(
        `<rect x="${(x0 + i * barW).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${(barW * 0.92).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${esc(s.name)}, ${esc(label)}: ${Number.isFinite(v) ? v.toFixed(3) : 'n/a'}</title></rect>`,
      );
    });
    parts.push(`<text x="${left + (g + 0.5) * groupW}" y="${top + plotH + 18}" text-anchor="middle">${esc(label)}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${height - 12}" text-anchor="middle">class (most to least frequent in training)</text>`);
  series.forEach((s, i) => {
    const ly = top + 8 + i * 20;
    parts.push(`<rect x="${width - right + 16}" y="${ly - 10}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    parts.push(`<text x="${width - right + 34}" y="${ly}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
