/**
 * Prometheus' text exposition format (version 0.0.4), written by hand: a few families, no
 * client library needed. https://prometheus.io/docs/instrumenting/exposition_formats/
 */

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels?: Labels;
  readonly value: number;
  /** Appended to the family's name (`_bucket`, `_sum`, `_count`). */
  readonly suffix?: string;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter' | 'histogram';
  readonly samples: readonly Sample[];
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A label value as the format quotes it: backslash, double quote and line feed escaped. */
const labelValue = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const helpText = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

const numberText = (value: number) =>
  Number.isNaN(value) ? 'NaN' : value === Infinity ? '+Inf' : value === -Infinity ? '-Inf' : String(value);

const labelsText = (labels: Labels | undefined) => {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? '' : `{${entries.map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')}}`;
};

export const renderPrometheus = (families: readonly MetricFamily[]): string =>
  families
    .map((family) =>
      [
        `# HELP ${family.name} ${helpText(family.help)}`,
        `# TYPE ${family.name} ${family.type}`,
        ...family.samples.map(
          (s) => `${family.name}${s.suffix ?? ''}${labelsText(s.labels)} ${numberText(s.value)}`,
        ),
      ].join('\n'),
    )
    .join('\n')
    .concat('\n');
