import { parseEdgerc } from './edgerc';

const SECTION = `[default]
client_secret = C113nt53KR3TN6N90yVuAgICxIRwsObLi0E67/N8eRN=
host = akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net
access_token = akab-acc35t0k3nodujqunph3w7hzp7-gtm6ij
client_token = akab-c113ntt0k3n4qtari252bfxxbsl-yvsdj
`;

describe('parseEdgerc', () => {
  it('reads host and the three secrets of a section', () => {
    const result = parseEdgerc(SECTION);
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.section).toBe('default');
    expect(result.credentials).toEqual({
      host: 'akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net',
      clientToken: 'akab-c113ntt0k3n4qtari252bfxxbsl-yvsdj',
      // The "=" inside a base64 secret belongs to the value.
      clientSecret: 'C113nt53KR3TN6N90yVuAgICxIRwsObLi0E67/N8eRN=',
      accessToken: 'akab-acc35t0k3nodujqunph3w7hzp7-gtm6ij',
    });
  });

  it('reads keys whose case is wrong, with a warning naming the typo', () => {
    const result = parseEdgerc(SECTION.replace('client_token', 'Client_token').replace('host', 'HOST'));
    expect(result.errors).toEqual([]);
    expect(result.credentials?.clientToken).toBe('akab-c113ntt0k3n4qtari252bfxxbsl-yvsdj');
    expect(result.warnings).toEqual([
      'Line 3: "HOST" read as "host"; fix the spelling in your .edgerc file too',
      'Line 5: "Client_token" read as "client_token"; fix the spelling in your .edgerc file too',
    ]);
  });

  it('reads dashes for underscores with a warning', () => {
    const result = parseEdgerc(SECTION.replace('access_token', 'access-token'));
    expect(result.credentials?.accessToken).toBe('akab-acc35t0k3nodujqunph3w7hzp7-gtm6ij');
    expect(result.warnings).toEqual([expect.stringContaining('"access-token" read as "access_token"')]);
  });

  it('rejects a misspelt key with a "did you mean" and fills in nothing', () => {
    const result = parseEdgerc(SECTION.replace('client_secret', 'client_secert'));
    expect(result.credentials).toBeUndefined();
    expect(result.errors).toEqual([
      'Line 2: unknown key; did you mean "client_secret"?',
      '"client_secret" is missing from [default]',
    ]);
  });

  it('reports missing and empty keys', () => {
    const result = parseEdgerc('[default]\nhost = akab-x.luna.akamaiapis.net\nclient_token =\naccess_token = a');
    expect(result.credentials).toBeUndefined();
    expect(result.errors).toEqual(['Line 3: "client_token" is empty', '"client_secret" is missing from [default]']);
  });

  it('picks the wanted section among several', () => {
    const text = `${SECTION}\n[ccu]\nhost = other.luna.akamaiapis.net\nclient_token = t2\nclient_secret = s2\naccess_token = a2\n`;
    const result = parseEdgerc(text, 'ccu');
    expect(result.sections).toEqual(['default', 'ccu']);
    expect(result.credentials).toEqual({
      host: 'other.luna.akamaiapis.net',
      clientToken: 't2',
      clientSecret: 's2',
      accessToken: 'a2',
    });
    expect(parseEdgerc(text, 'papi').errors).toEqual([
      'Section [papi] not found; the pasted text has [default], [ccu]. Set "Section" to one of them.',
    ]);
  });

  it('reads a single section whatever its name, and lines pasted without a header', () => {
    expect(parseEdgerc(SECTION.replace('[default]', '[estats]')).credentials).toBeDefined();
    const headless = parseEdgerc(SECTION.replace('[default]\n', ''));
    expect(headless.section).toBe('');
    expect(headless.credentials?.host).toBe('akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net');
  });

  it('ignores comments, blank lines, max_body and unrelated keys', () => {
    const text = `; my creds\n# more\n\n${SECTION}max_body = 131072\ncolour = blue\n`;
    const result = parseEdgerc(text);
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([
      'Line 10: not one of host, client_token, client_secret, access_token, max_body, max-body, ignored (a value wrapped onto its own line?)',
    ]);
  });

  it('strips a scheme and a trailing slash from host, and quotes from values', () => {
    const text = SECTION.replace('host = ', 'host = https://')
      .replace('akamaiapis.net\n', 'akamaiapis.net/\n')
      .replace('access_token = akab-acc35t0k3nodujqunph3w7hzp7-gtm6ij', 'access_token = "quoted"');
    const result = parseEdgerc(text);
    expect(result.credentials?.host).toBe('akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net');
    expect(result.credentials?.accessToken).toBe('quoted');
    expect(result.warnings).toEqual([
      'Line 4: quotes around the value of "access_token" removed',
      'The scheme was removed from "host": it is always https',
    ]);
  });

  it('rejects duplicate keys and lines that are not key = value', () => {
    const result = parseEdgerc(`${SECTION}client_token = again\nnot a setting\n`);
    expect(result.credentials).toBeUndefined();
    expect(result.errors).toEqual([
      'Line 7: expected "key = value" or a [section] header; is a value wrapped onto its own line?',
      'Line 6: "client_token" is set twice (first on line 5); keep one',
    ]);
  });

  it('never quotes a pasted value, e.g. a secret wrapped onto the next line', () => {
    const secret = 'C113nt53KR3TN6N90yVuAgICxIRwsObLi0E67/N8eRN=';
    for (const wrapped of [
      SECTION.replace(`client_secret = ${secret}`, `client_secret =\n${secret}`),
      SECTION.replace(`client_secret = ${secret}`, `client_secret = C113nt53KR3TN6\nN90yVuAgICxIRwsObLi0E67/N8eRN=`),
      SECTION.replace(`client_secret = ${secret}`, `client_secret = C113nt53KR3TN6\nN90yVuAgICxIRwsObLi0E67N8eRN`),
    ]) {
      const result = parseEdgerc(wrapped);
      expect(result.credentials).toBeUndefined();
      const messages = [...result.errors, ...result.warnings].join('\n');
      expect(messages).toMatch(/wrapped onto its own line/);
      for (const part of ['C113nt53', 'N90yVuAg', 'akab-acc35', 'akab-c113n']) {
        expect(messages).not.toContain(part);
      }
    }
  });

  it('says what to paste when there is nothing', () => {
    expect(parseEdgerc('  \n; only a comment\n').errors).toEqual([
      'Nothing to read: paste a section of your .edgerc file, e.g. [default] followed by its four keys',
    ]);
  });
});
