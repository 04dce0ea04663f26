// Runs one of the bench scripts as a user would (after the build), with its output, for the bench smoke tests.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

export interface BenchRun {
  code: number | null
  stdout: string
  stderr: string
}

export async function runBench (t: Test, script: string, args: string[], env: Record<string, string> = {}): Promise<BenchRun> {
  const path = fileURLToPath(new URL(`../../bench/${script}`, import.meta.url))
  // Not under tap's coverage: the bench is no part of the package, and instrumented servers would only be slower.
  const child = spawn(process.execPath, [path, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0', ...env }
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  t.teardown(() => { child.kill() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  return { code, stdout, stderr }
}
