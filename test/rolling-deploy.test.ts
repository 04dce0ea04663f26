// Key rotation in a rolling deploy, as docs/key-rotation.md describes it: three app processes
// (test/helpers/rotation-instance.js, the BUILT package) behind a real nginx load balancer, restarted one by one
// with a new key list while clients with random timing keep renewing (`renewAfter: 0`: every answer re-signs,
// so every token one instance signs is checked by the next). Real time throughout.
import { spawn, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { startLoadBalancer } from './helpers/nginx.js'
import { freePort } from './helpers/redis.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const script = join(root, 'test', 'helpers', 'rotation-instance.js')
const k1 = { kid: 'k1', secret: 'the-first-secret-of-this-deployment-32b' }
const k2 = { kid: 'k2', secret: 'the-second-secret-of-this-deployment-32' }
const maxAge = 2000
type KeyList = Array<{ kid: string, secret: string, signFrom?: string }>

// Children get a plain environment: no tap loader or coverage (they run dist/, not the sources tap measures).
const baseEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) =>
  !/^(NODE_OPTIONS|NODE_V8_COVERAGE|TAP|TAP_.*|_TAPJS_.*)$/.test(key)))

/** Three instances on fixed ports (nginx's upstreams), each restartable with another key list. */
class Fleet {
  readonly children: Array<ChildProcess | undefined> = []
  /** The longest an instance took to start, ms: what a deploy's duration scales with on this machine now. */
  slowestStart = 0
  constructor (readonly t: Test, readonly ports: number[]) {
    t.teardown(async () => { for (const index of ports.keys()) await this.stop(index, 'SIGKILL') })
  }

  async start (index: number, keys: KeyList): Promise<void> {
    const started = performance.now()
    const child = spawn(process.execPath, [script], {
      cwd: root,
      env: { ...baseEnv, PORT: String(this.ports[index]), KEYS: JSON.stringify(keys), MAX_AGE: `${maxAge}ms`, RENEW_AFTER: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    this.children[index] = child
    let output = ''
    child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`instance ${index} did not start within 30 s:\n${output}`)), 30_000)
      child.once('exit', (code) => reject(new Error(`instance ${index} exited (${code}):\n${output}`)))
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('"listening"')) {
          clearTimeout(timer)
          this.slowestStart = Math.max(this.slowestStart, performance.now() - started)
          resolve()
        }
      })
    })
  }

  /** Stops instance `index` by its pid (SIGTERM: it answers what it has, then exits) and waits for the exit. */
  async stop (index: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.children[index]
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill(signal)
    await exited
  }

  /** The rolling deploy: one instance after the other, with traffic on the mixed fleet between restarts. */
  async roll (keys: KeyList): Promise<void> {
    for (const index of this.ports.keys()) {
      await this.stop(index)
      await this.start(index, keys)
      await sleep(300)
    }
  }
}

interface Refusal { status: number, body: string }

/** Signed-in users sending requests in turn at random intervals, each keeping the token it is given. */
class Traffic {
  readonly refusals: Refusal[] = []
  /** Each token handed out, when, and by which key. */
  readonly issued: Array<{ at: number, kid: string }> = []
  answers = 0
  #running = true
  #clients: Array<Promise<void>> = []

  constructor (readonly url: string, clients: number) {
    for (let index = 0; index < clients; index++) this.#clients.push(this.#client(`user-${index}`))
  }

  async #login (sub: string): Promise<string> {
    const response = await fetch(`${this.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub }) })
    const token = this.#tokenOf(response)
    await response.arrayBuffer()
    if (response.status !== 200 || token === undefined) throw new Error(`login failed: ${response.status}`)
    return token
  }

  #tokenOf (response: Response): string | undefined {
    const line = response.headers.getSetCookie().find((cookie) => cookie.startsWith('token='))
    const token = line?.slice('token='.length, line.indexOf(';'))
    if (token) this.issued.push({ at: Date.now(), kid: JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid })
    return token
  }

  async #client (sub: string): Promise<void> {
    let token = await this.#login(sub)
    while (this.#running) {
      const response = await fetch(`${this.url}/private`, { headers: { cookie: `token=${token}` } }).catch((error: Error) => error)
      if (response instanceof Error) {
        this.refusals.push({ status: 0, body: response.message })
        continue
      }
      this.answers++
      const renewed = this.#tokenOf(response)
      const body = await response.text()
      if (response.status !== 200) {
        this.refusals.push({ status: response.status, body })
        token = await this.#login(sub)
      } else if (renewed !== undefined) {
        token = renewed
      }
      await sleep(Math.random() * 20)
    }
  }

  async stop (): Promise<void> {
    this.#running = false
    await Promise.all(this.#clients)
  }
}

async function deployment (t: Test, keys: KeyList): Promise<{ fleet: Fleet, traffic: Traffic }> {
  const fleet = new Fleet(t, [await freePort(), await freePort(), await freePort()])
  for (const index of fleet.ports.keys()) await fleet.start(index, keys)
  const balancer = await startLoadBalancer(t, fleet.ports)
  const traffic = new Traffic(balancer.url, 6)
  t.teardown(() => traffic.stop())
  await sleep(300)
  return { fleet, traffic }
}

const refusalsOf = (traffic: Traffic): string[] => traffic.refusals.map(({ status, body }) => `${status} ${body}`)

t.test('with signFrom: one deploy switches every instance at the same moment, then k1 goes; no token refused', async (t) => {
  const { fleet, traffic } = await deployment(t, [k1])
  // Later than the deploy can take (three restarts, each as slow as the slowest start so far, twice over): it
  // reaches every instance before any of them signs with k2.
  const switchAt = Date.now() + 2 * 3 * (fleet.slowestStart + 300) + 1000
  await fleet.roll([{ ...k2, signFrom: new Date(switchAt).toISOString() }, k1])
  t.ok(Date.now() < switchAt, 'the deploy was done before signFrom')
  await sleep(switchAt + 500 - Date.now())
  // Every instance has waited for the last k1 token to end before k1 is removed.
  await sleep(maxAge)
  await fleet.roll([k2])
  await traffic.stop()

  t.same(refusalsOf(traffic), [], 'not one request refused during either deploy')
  t.ok(traffic.answers > 300, `${traffic.answers} answers`)
  t.same([...new Set(traffic.issued.filter(({ at }) => at < switchAt).map(({ kid }) => kid))], ['k1'], 'before signFrom, only k1 signs')
  // The instances and this process share one clock; 50 ms for a response on its way.
  t.same([...new Set(traffic.issued.filter(({ at }) => at > switchAt + 50).map(({ kid }) => kid))], ['k2'], 'after it, only k2')
})

t.test('without signFrom, in three deploys: [k1, k2], then [k2, k1], then [k2]; no token refused', async (t) => {
  const { fleet, traffic } = await deployment(t, [k1])
  await fleet.roll([k1, k2])
  await fleet.roll([k2, k1])
  await sleep(maxAge)
  await fleet.roll([k2])
  await traffic.stop()

  t.same(refusalsOf(traffic), [], 'not one request refused during the three deploys')
  t.ok(traffic.answers > 300, `${traffic.answers} answers`)
  t.equal(traffic.issued.at(-1)?.kid, 'k2')
})

t.test('the shortcut the procedure avoids: [k2, k1] straight over [k1] logs users out', async (t) => {
  const { fleet, traffic } = await deployment(t, [k1])
  await fleet.roll([k2, k1])
  await traffic.stop()
  t.ok(traffic.refusals.length > 0, `${traffic.refusals.length} requests refused`)
  t.ok(traffic.refusals.every(({ status, body }) => status === 401 && body.includes('FST_TOKEN_COOKIE_INVALID') && body.includes('no key for kid')),
    'each one by an instance still on [k1], for a token k2 signed')
})
