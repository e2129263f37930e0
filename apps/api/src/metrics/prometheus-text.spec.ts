import { renderPrometheus } from './prometheus-text';

describe('renderPrometheus (text exposition format 0.0.4)', () => {
  it('writes HELP and TYPE before each family, then its samples, one per line', () => {
    expect(
      renderPrometheus([
        { name: 'a_total', help: 'Things.', type: 'counter', samples: [{ labels: { kind: 'x' }, value: 3 }] },
        { name: 'b', help: 'B.', type: 'gauge', samples: [{ value: 0.5 }, { value: 1, labels: {} }] },
      ]),
    ).toBe(
      '# HELP a_total Things.\n# TYPE a_total counter\na_total{kind="x"} 3\n# HELP b B.\n# TYPE b gauge\nb 0.5\nb 1\n',
    );
  });

  it('escapes label values and help texts; writes infinities and NaN as the format spells them', () => {
    const text = renderPrometheus([
      {
        name: 'h',
        help: 'line one\nback\\slash',
        type: 'histogram',
        samples: [
          { suffix: '_bucket', labels: { le: '+Inf', command: 'say "hi"\\\n' }, value: Infinity },
          { suffix: '_sum', value: NaN },
          { suffix: '_count', value: -Infinity },
        ],
      },
    ]);
    expect(text.split('\n')).toEqual([
      '# HELP h line one\\nback\\\\slash',
      '# TYPE h histogram',
      'h_bucket{le="+Inf",command="say \\"hi\\"\\\\\\n"} +Inf',
      'h_sum NaN',
      'h_count -Inf',
      '',
    ]);
  });
});
