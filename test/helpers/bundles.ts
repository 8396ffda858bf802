import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { ZipArchive } from 'archiver';

/**
 * Writes a real jar (a zip with META-INF/MANIFEST.MF and a class-like entry) for bundle tests.
 * `manifest: null` leaves the manifest out; a string replaces it whole.
 */
export async function writeTestJar(
  file: string,
  options: { symbolicName?: string; version?: string; manifest?: string | null; payload?: string },
): Promise<{ file: string; sha256: string; bytes: number }> {
  const archive = new ZipArchive({ zlib: { level: 6 } });
  const written = pipeline(archive, createWriteStream(file));
  const manifest =
    options.manifest !== undefined
      ? options.manifest
      : 'Manifest-Version: 1.0\r\nBundle-ManifestVersion: 2\r\n' +
        `Bundle-SymbolicName: ${options.symbolicName ?? 'com.example.test'};singleton:=true\r\n` +
        `Bundle-Version: ${options.version ?? '1.0.0'}\r\n\r\n`;
  if (manifest !== null) archive.append(manifest, { name: 'META-INF/MANIFEST.MF' });
  archive.append(options.payload ?? `payload of ${options.version ?? '1.0.0'}`, {
    name: 'com/example/Activator.class',
  });
  await archive.finalize();
  await written;
  const bytes = await readFile(file);
  return { file, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
}
