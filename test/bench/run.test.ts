// The benchmark runs (CI checks that it runs and that every variant answers as designed, not its numbers).
// Not part of `npm test`: `npm run test:bench` builds, then runs test/bench/ (CI runs it once).
import { test } from 'tap'
import { runBench } from '../helpers/run-bench.js'

const rows = ['1', '1b', '2', '3', '4', '4b', '5', '6', '7', '8', '9', '10', '11', '11b', '13']

test('npm run bench -- --quick: every variant measured, a table printed, exit 0', async (t) => {
  // Other test files share the two cores, so the Redis variants get more than the default 100 ms (and replica 1 s)
  // before they answer 503.
  const { code, stdout, stderr } = await runBench(t, 'run.js', ['--quick'], { BENCH_STORE_TIMEOUT: '5s', BENCH_MAX_LAG: '5s' })
  t.equal(code, 0, `exit code 0\n${stderr}`)
  t.match(stdout, /^Machine: .+ cores, Node v/m, 'the machine line')
  t.match(stdout, /^\| variant \| median req\/s \| ratio to bare \| p99 ms \| CPU µs\/req \| RSS MB \(after\) \| RSS growth across rounds MB \|$/m, 'the table header')
  for (const row of rows) {
    t.match(stdout, new RegExp(`^\\| ${row}\\. .+ \\| \\d+ \\| \\d+\\.\\d\\d \\| \\d+ \\| \\d+\\.\\d \\| \\d+\\.\\d \\| (?:n/a|[+-]\\d+\\.\\d) \\|$`, 'm'), `a row for variant ${row}`)
  }
  t.match(stdout, /^\| 11\. .+ \| 1\.\d{3} \|$/m, 'variant 11: one Redis command per request (and the odd one more)')
  t.match(stdout, /^\| 11b\. .+ \| 0\.0\d\d \|$/m, 'variant 11b: next to none')
  t.match(stdout, /^Targets, on median ratios/m, 'the targets')
})
