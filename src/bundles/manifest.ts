import yauzl from 'yauzl';
import { bundleVersionPattern, symbolicNamePattern } from '../contracts/bundles.js';
import { ClusterGuardError } from '../contracts/errors.js';

export const manifestPath = 'META-INF/MANIFEST.MF';
/** A manifest is a few kilobytes; anything this large is not one. */
const maxManifestBytes = 1024 * 1024;

/**
 * The main section of a JAR manifest: `Name: value` lines up to the first empty line, a line
 * that starts with one space continuing the previous one (lines are wrapped at 72 bytes).
 */
export function parseManifest(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)) {
    if (line === '') break;
    if (line.startsWith(' ')) {
      if (last !== undefined) headers.set(last, (headers.get(last) ?? '') + line.slice(1));
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim();
    // Header names are case-insensitive in the JAR specification.
    const key = [...headers.keys()].find((k) => k.toLowerCase() === last?.toLowerCase()) ?? last;
    last = key;
    headers.set(key, line.slice(colon + 1).trim());
  }
  return headers;
}

function header(headers: Map<string, string>, name: string): string | undefined {
  for (const [k, v] of headers) if (k.toLowerCase() === name.toLowerCase()) return v;
  return undefined;
}

export interface BundleIdentity {
  symbolicName: string;
  version: string;
}

/**
 * `Bundle-SymbolicName` without its parameters (`com.example.a;singleton:=true` →
 * `com.example.a`) and `Bundle-Version`; a refusal names what is missing or malformed.
 */
export function bundleIdentity(headers: Map<string, string>): BundleIdentity {
  const rawName = header(headers, 'Bundle-SymbolicName');
  const symbolicName = rawName?.split(';')[0]?.trim() ?? '';
  if (!symbolicName) {
    throw new ClusterGuardError(
      'InvalidInput',
      `the manifest (${manifestPath}) has no Bundle-SymbolicName: it is not an OSGi bundle`,
    );
  }
  if (!symbolicNamePattern.test(symbolicName)) {
    throw new ClusterGuardError(
      'InvalidInput',
      `Bundle-SymbolicName "${symbolicName.slice(0, 100)}" is not a valid symbolic name ` +
        '(dotted tokens of letters, digits, "_" and "-")',
    );
  }
  const version = header(headers, 'Bundle-Version')?.trim() ?? '';
  if (!version) {
    throw new ClusterGuardError(
      'InvalidInput',
      `the manifest (${manifestPath}) of ${symbolicName} has no Bundle-Version`,
    );
  }
  if (!bundleVersionPattern.test(version)) {
    throw new ClusterGuardError(
      'InvalidInput',
      `Bundle-Version "${version.slice(0, 100)}" of ${symbolicName} is not an OSGi version ` +
        '(major[.minor[.micro[.qualifier]]])',
    );
  }
  return { symbolicName, version };
}

/** Reads the identity of the jar at `file`; refusals are InvalidInput with the reason. */
export async function readJarIdentity(file: string): Promise<BundleIdentity> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
  } catch (err) {
    throw new ClusterGuardError(
      'InvalidInput',
      `not a jar: the file is not a zip archive or it is truncated (${(err as Error).message})`,
    );
  }
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName !== manifestPath) continue;
      if (entry.uncompressedSize > maxManifestBytes) {
        throw new ClusterGuardError(
          'InvalidInput',
          `${manifestPath} declares ${entry.uncompressedSize} bytes: too large for a manifest`,
        );
      }
      const stream = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxManifestBytes) {
          stream.destroy();
          throw new ClusterGuardError('InvalidInput', `${manifestPath} is too large`);
        }
        chunks.push(chunk);
      }
      return bundleIdentity(parseManifest(Buffer.concat(chunks).toString('utf8')));
    }
  } catch (err) {
    if (err instanceof ClusterGuardError) throw err;
    throw new ClusterGuardError('InvalidInput', `not a readable jar: ${(err as Error).message}`);
  } finally {
    zip.close();
  }
  throw new ClusterGuardError(
    'InvalidInput',
    `the jar has no manifest (${manifestPath}): it is not an OSGi bundle`,
  );
}
