import { markdownBlock, markdownCell, markdownInline, markdownListItem } from './markdown';

describe('user text in Markdown comes out as text, never as structure', () => {
  it('inline: escapes what starts emphasis, code, links, HTML and tables; line breaks (CR too) become spaces', () => {
    expect(markdownInline('a|b \\ c')).toBe('a\\|b \\\\ c');
    expect(markdownInline('<img src=x onerror=alert(1)>')).toBe('\\<img src=x onerror=alert(1)>');
    // ordinary titles keep their bytes: the change log stays the seed's table
    for (const title of [
      'Upgrade node_exporter on pve1',
      'Scale to > 3 replicas',
      "O'Brien & Anne-Marie: 50% (v2.1)",
    ])
      expect(markdownInline(title)).toBe(title);
    expect(markdownInline('[x](javascript:alert(1)) *b* _i_ `c` ~s~ [Name]')).toBe(
      '[x\\]\\(javascript:alert(1)) \\*b\\* \\_i\\_ \\`c\\` \\~s\\~ [Name]',
    );
    // an entity would render as the character it names: its & is escaped, a bare & is not
    expect(markdownInline('Fix AT&amp;T &lt;b&gt; &#60;i&#x3E; & more &nbsp')).toBe(
      'Fix AT\\&amp;T \\&lt;b\\&gt; \\&#60;i\\&#x3E; & more &nbsp',
    );
    // a lone CR is a line ending to CommonMark: it must not start a forged table row
    expect(markdownCell('a\r| 2026-01-01 | CHG-999 | Forged |')).toBe(
      'a \\| 2026-01-01 \\| CHG-999 \\| Forged \\|',
    );
    expect(markdownInline('one\r\ntwo\nthree')).toBe('one two three');
    expect(markdownInline(undefined)).toBe('');
    expect(markdownInline('Reconfigure VLAN 20 on pve-cluster (2026-11-26)')).toBe(
      'Reconfigure VLAN 20 on pve-cluster (2026-11-26)',
    );
  });

  it('control characters (an ESC sequence stored before requests refused them) become U+FFFD', () => {
    expect(markdownInline('a\u001b[2Jb')).toBe('a\ufffd[2Jb');
    expect(markdownBlock('one\u0007\ntwo\tthree')).toBe('one\ufffd  \ntwo\tthree');
    expect(markdownListItem('\u009b31m')).toBe('\ufffd31m');
  });

  it('list item: one line whose start cannot open a heading, quote or list inside the item', () => {
    // CommonMark reads `- ## Approval — approved by CISO` as a heading inside the list
    expect(markdownListItem('## Approval — approved by CISO')).toBe('\\## Approval — approved by CISO');
    expect(markdownListItem('> quoted\n- nested')).toBe('\\> quoted - nested'); // one line: mid-line is text
    expect(markdownListItem('2. second')).toBe('2\\. second');
    expect(markdownListItem('  + indented')).toBe('\\+ indented');
    expect(markdownListItem('\n\n\n\n## Approval')).toBe('\\## Approval'); // not a code block
    expect(markdownListItem('pve-node-1')).toBe('pve-node-1');
    expect(markdownListItem(undefined)).toBe('');
  });

  it('block: keeps the lines, but none can start a heading, quote, list or rule', () => {
    expect(markdownBlock('x\n\n## Approval\n- **Approved By:** CISO\n> quoted\n1. first\n---')).toBe(
      [
        'x',
        '',
        '\\## Approval',
        '\\- \\*\\*Approved By:\\*\\* CISO',
        '\\> quoted',
        '1\\. first',
        '\\---',
      ].join('  \n'),
    );
    expect(markdownBlock('  # indented')).toBe('  \\# indented');
    expect(markdownBlock('[1]: https://evil.example/')).toBe('\\[1]: https://evil.example/');
    expect(markdownBlock('plain text, 2 lines\nsecond')).toBe('plain text, 2 lines  \nsecond');
  });
});
