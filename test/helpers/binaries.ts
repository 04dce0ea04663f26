// Where the servers the tests start live: an environment variable names one, else the first on PATH or in the sbin
// and bin folders Debian installs to.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** The executable `name`: `$<variable>`, else the first found; `undefined` when there is none. */
export function findBinary (name: string, variable: string): string | undefined {
  const named = process.env[variable]
  const candidates = named !== undefined
    ? [named]
    : [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'].filter(Boolean).map((dir) => join(dir, name))
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}
