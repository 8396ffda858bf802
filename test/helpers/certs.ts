import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

/** Files of one issued certificate, PEM. */
export interface IssuedCert {
  cert: string;
  key: string;
}

/**
 * A throwaway certificate authority in `dir` (openssl, one day), for tests that need real TLS.
 * Every certificate gets X.509 v3 extensions: rustls (the Temporal SDK's TLS) takes no other.
 */
export class TestCa {
  readonly cert: string;
  private readonly key: string;

  private constructor(private readonly dir: string) {
    this.cert = path.join(dir, 'ca.pem');
    this.key = path.join(dir, 'ca.key');
  }

  static async create(dir: string, name = 'clusterguard test CA'): Promise<TestCa> {
    const ca = new TestCa(dir);
    await execa(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${name}`,
      ].concat(['-keyout', ca.key, '-out', ca.cert]),
      { cwd: dir },
    );
    return ca;
  }

  /**
   * A certificate named `name`: `ips`/`dns` become its subjectAltName, `usage` its extended key
   * usage (`serverAuth`, `clientAuth`, or both).
   */
  async issue(
    name: string,
    options: { ips?: string[]; dns?: string[]; usage: ('serverAuth' | 'clientAuth')[] },
  ): Promise<IssuedCert> {
    const base = path.join(this.dir, name);
    const alt = [
      ...(options.ips ?? []).map((ip) => `IP:${ip}`),
      ...(options.dns ?? []).map((d) => `DNS:${d}`),
    ];
    await writeFile(
      `${base}.ext`,
      (alt.length ? `subjectAltName=${alt.join(',')}\n` : '') +
        `extendedKeyUsage=${options.usage.join(',')}\n`,
    );
    await execa(
      'openssl',
      ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`].concat([
        '-keyout',
        `${base}.key`,
        '-out',
        `${base}.csr`,
      ]),
    );
    await execa(
      'openssl',
      ['x509', '-req', '-in', `${base}.csr`, '-CA', this.cert]
        .concat(['-CAkey', this.key, '-CAcreateserial', '-days', '1'])
        .concat(['-out', `${base}.pem`, '-extfile', `${base}.ext`]),
      { cwd: this.dir },
    );
    return { cert: `${base}.pem`, key: `${base}.key` };
  }
}
