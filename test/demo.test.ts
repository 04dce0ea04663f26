// `node demo/server.js` (what `npm start` runs once dist/ is built) with bad settings: one line on stderr
// saying what to change, exit code 1, no stack trace. And a good start ends cleanly on SIGTERM.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import t, { type Test } from 'tap'

const server = new URL('../demo/server.js', import.meta.url).pathname

interface Run { code: number | null, signal: string | null, stdout: string, stderr: string }

/**
 * Runs the demo with `env` added to this process's environment (PORT=0 unless given) until it exits, or
 * until `until` matches its stdout; whatever is still running when the test ends is killed by its pid.
 */
function runDemo (tt: Test, env: Record<string, string>, until?: RegExp) {
  const child = spawn(process.execPath, [server], {
    env: { ...process.env, PORT: '0', TOKEN_SECRET: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const run: Run = { code: null, signal: null, stdout: '', stderr: '' }
  child.stdout.on('data', (chunk) => { run.stdout += String(chunk) })
  child.stderr.on('data', (chunk) => { run.stderr += String(chunk) })
  const exited = new Promise<Run>((resolve) => child.once('close', (code, signal) => {
    run.code = code
    run.signal = signal
    resolve(run)
  }))
  tt.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGKILL')
      await exited
    }
  })
  const started = until === undefined
    ? undefined
    : new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => { if (until.test(run.stdout)) resolve() })
      exited.then((run) => reject(new Error(`the demo exited (${run.code}) first: ${run.stdout}${run.stderr}`)), reject)
    })
  return { child, exited, started, run }
}

/** One line of stderr, `demo: <what>`, nothing on stdout, exit code 1. */
async function refuses (tt: Test, env: Record<string, string>, line: RegExp, what: string) {
  const run = await runDemo(tt, env).exited
  tt.equal(run.code, 1, `${what}: exit code 1`)
  tt.match(run.stderr, line, `${what}: says what to change`)
  tt.equal(run.stderr.split('\n').length, 2, `${what}: in one line (${JSON.stringify(run.stderr)})`)
  tt.notMatch(run.stderr, /\n\s+at /, `${what}: no stack trace`)
  tt.equal(run.stdout, '', `${what}: prints no URL`)
}

if (!existsSync(new URL('../dist/esm/index.js', import.meta.url))) {
  t.fail('dist/ is missing: run `npm run build` before these tests (npm test does)')
} else {
  t.jobs = 4

  // Within a test too, the runs go side by side: starting Node is most of the time here.
  t.test('a TOKEN_SECRET under 32 bytes', async (t) => {
    await Promise.all([
      refuses(t, { TOKEN_SECRET: 'short' }, /^demo: TOKEN_SECRET must be at least 32 bytes \(it has 5\); leave it unset for a random one\n$/, 'short'),
      refuses(t, { TOKEN_SECRET: '' }, /^demo: TOKEN_SECRET must be at least 32 bytes \(it has 0\)/, 'empty')
    ])
  })

  t.test('a port already in use', async (t) => {
    const busy = createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => busy.close(resolve)))
    const { port } = busy.address() as AddressInfo
    await refuses(t, { PORT: String(port) }, new RegExp(`^demo: port ${port} is in use; set PORT to another port`), 'busy port')
  })

  t.test('a PORT that is not a port, durations that are not ones, an unknown LOG_LEVEL', async (t) => {
    await Promise.all([
      refuses(t, { PORT: 'http' }, /^demo: PORT must be a port number from 0 to 65535, got "http"\n$/, 'PORT=http'),
      refuses(t, { PORT: '70000' }, /^demo: PORT must be a port number/, 'PORT=70000'),
      refuses(t, { DEMO_IDLE: 'soon' }, /^demo: idle \(DEMO_IDLE\): expected a duration like 90, '90s', '5m' or '7d', got "soon"\n$/, 'DEMO_IDLE=soon'),
      refuses(t, { DEMO_ABSOLUTE: '-5m' }, /^demo: absolute \(DEMO_ABSOLUTE\): expected a duration/, 'DEMO_ABSOLUTE=-5m'),
      refuses(t, { DEMO_REAUTH: 'never' }, /^demo: reauth \(DEMO_REAUTH\): expected a duration/, 'DEMO_REAUTH=never'),
      refuses(t, { LOG_LEVEL: 'loud' }, /^demo: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\n$/, 'LOG_LEVEL=loud')
    ])
  })

  t.test('a good TOKEN_SECRET starts the demo; SIGTERM ends it with exit code 0', async (t) => {
    const demo = runDemo(t, { TOKEN_SECRET: 'a'.repeat(32) }, /demo users:.*\n/)
    await demo.started
    t.match(demo.run.stdout, /^fastify-token-cookie demo: http:\/\/127\.0\.0\.1:\d+\n/, 'prints its URL')
    t.notMatch(demo.run.stdout, /random secret/, 'and signs with the secret it was given')
    const url = /demo: (\S+)/.exec(demo.run.stdout)![1]
    t.equal((await fetch(`${url}/favicon.svg`)).status, 200, 'serves')
    process.kill(demo.child.pid!, 'SIGTERM')
    const run = await demo.exited
    t.same({ code: run.code, signal: run.signal, stderr: run.stderr }, { code: 0, signal: null, stderr: '' }, 'closes the server and ends by itself')
  })
}
