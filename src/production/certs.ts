import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

/** A certificate and its key, PEM files. */
export interface CertFiles {
  cert: string;
  key: string;
}

/**
 * The production stack's certificates, from its own CA under `dir` (openssl): the Temporal
 * frontend's (mutual TLS), one client certificate for every clusterguard process and the
 * `temporal` CLI, and one per node agent naming the node's address. Made once; a file already
 * there is kept, so that a restart does not invalidate what clients trust.
 */
export interface ProductionCerts {
  ca: string;
  frontend: CertFiles;
  client: CertFiles;
  agent(node: string): CertFiles;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await execa('openssl', args, { cwd });
}

/** X.509 v3 extensions throughout: rustls (the SDK's TLS) accepts no v1 certificates. */
async function issue(
  dir: string,
  name: string,
  ca: CertFiles,
  alt: string[],
  usage: string,
): Promise<CertFiles> {
  const files = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  if (existsSync(files.cert) && existsSync(files.key)) return files;
  const ext = path.join(dir, `${name}.ext`);
  await writeFile(
    ext,
    (alt.length ? `subjectAltName=${alt.join(',')}\n` : '') +
      `extendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\n`,
  );
  const csr = path.join(dir, `${name}.csr`);
  await openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`].concat([
      '-keyout',
      files.key,
      '-out',
      csr,
    ]),
    dir,
  );
  await openssl(
    ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial'].concat([
      '-days',
      '825',
      '-out',
      files.cert,
      '-extfile',
      ext,
    ]),
    dir,
  );
  return files;
}

export async function ensureCerts(
  dir: string,
  options: { frontendHost: string; nodes: string[] },
): Promise<ProductionCerts> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = { cert: path.join(dir, 'ca.pem'), key: path.join(dir, 'ca.key') };
  if (!existsSync(ca.cert) || !existsSync(ca.key)) {
    await openssl(
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650']
        .concat(['-subj', '/CN=clusterguard production CA', '-keyout', ca.key, '-out', ca.cert])
        .concat([
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=keyCertSign,cRLSign',
        ]),
      dir,
    );
  }
  // The frontend's certificate doubles as the server's own client certificate (its worker
  // service calls the frontend), hence both usages. `temporal` is its name in docker-compose.yml.
  const frontendAlt = [...new Set([options.frontendHost, '127.0.0.1'])].map((ip) => `IP:${ip}`);
  const frontend = await issue(
    dir,
    `frontend-${options.frontendHost}`,
    ca,
    [...frontendAlt, 'DNS:localhost', 'DNS:temporal'],
    'serverAuth,clientAuth',
  );
  const client = await issue(dir, 'clusterguard-client', ca, [], 'clientAuth');
  const agents = new Map<string, CertFiles>();
  for (const node of options.nodes) {
    agents.set(
      node,
      await issue(dir, `agent-${node}`, ca, [`IP:${node}`], 'serverAuth,clientAuth'),
    );
  }
  return {
    ca: ca.cert,
    frontend,
    client,
    agent(node) {
      const files = agents.get(node);
      if (!files) throw new Error(`no certificate was issued for node ${node}`);
      return files;
    },
  };
}
