/**
 * The certificates docker-compose.yml mounts, from a CA of its own (the same code as
 * `npm start -- --production`):
 *   node --import tsx scripts/production-certs.ts deploy/secrets/tls
 * The frontend's certificate names `temporal` and 172.28.0.5; each agent's its address.
 */
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureCerts } from '../src/production/certs.js';

const dir = path.resolve(process.argv[2] ?? 'deploy/secrets/tls');
const nodes = ['172.28.0.11', '172.28.0.12', '172.28.0.13'];
const certs = await ensureCerts(dir, { frontendHost: '172.28.0.5', nodes });
// Stable names for the compose file's secrets.
await copyFile(certs.frontend.cert, path.join(dir, 'frontend.pem'));
await copyFile(certs.frontend.key, path.join(dir, 'frontend.key'));
await copyFile(certs.client.cert, path.join(dir, 'client.pem'));
await copyFile(certs.client.key, path.join(dir, 'client.key'));
for (const [i, node] of nodes.entries()) {
  await copyFile(certs.agent(node).cert, path.join(dir, `agent-${i + 1}.pem`));
  await copyFile(certs.agent(node).key, path.join(dir, `agent-${i + 1}.key`));
}
console.log(`certificates in ${dir}`);
