// The benchmark runs (CI checks that it runs and that every variant answers as designed, not its numbers).
// Needs the build (`npm test` builds before tap).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'

const rows = ['1', '2', '3', '4', '4b', '5', '6', '7', '8', '9', '10', '11']

test('npm run bench -- --quick: every variant measured, a table printed, exit 0', async (t) => {
  const script = fileURLToPath(new URL('../bench/run.js', import.meta.url))
  // Not under tap's coverage: the bench is no part of the package, and the instrumented servers would be many times slower.
  const env = { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' }
  const child = spawn(process.execPath, [script, '--quick'], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  t.teardown(() => { child.kill() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.equal(code, 0, `exit code 0\n${stderr}`)
  t.match(stdout, /^Machine: .+ cores, Node v/m, 'the machine line')
  t.match(stdout, /^\| variant \| median req\/s \| ratio to bare \| p99 ms \| CPU µs\/req \| RSS MB \(after\) \| RSS growth across rounds MB \|$/m, 'the table header')
  for (const row of rows) {
    t.match(stdout, new RegExp(`^\\| ${row}\\. .+ \\| \\d+ \\| \\d+\\.\\d\\d \\| \\d+ \\| \\d+\\.\\d \\| \\d+\\.\\d \\| (?:n/a|[+-]\\d+\\.\\d) \\|$`, 'm'), `a row for variant ${row}`)
  }
  t.match(stdout, /^Targets \(issue 4\)/m, 'the targets')
})
