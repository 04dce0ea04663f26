// App instances as separate processes (test/helpers/instance.js, the BUILT package: `npm run build` first; `npm test`
// does), on ports of their own, one secret, and the requests the instance tests send them. Real time throughout.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import type { RedisServer } from './redis.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const script = join(root, 'test', 'helpers', 'instance.js')
const secret = 'a-secret-shared-by-every-instance-of-this-app'

// Children get a plain environment: no tap loader or coverage (they run dist/, not the sources tap measures).
const baseEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) =>
  !/^(NODE_OPTIONS|NODE_V8_COVERAGE|TAP|TAP_.*|_TAPJS_.*)$/.test(key)))

export interface LogLine { level: number, msg: string }

export interface Instance {
  name: string
  url: string
  child: ChildProcess
  logs: LogLine[]
  stderr: () => string
}

/** Starts an instance; resolves once it listens. It is killed in the test's teardown. */
export async function startInstance (t: Test, name: string, redis: Pick<RedisServer, 'port'>, env: Record<string, string> = {}): Promise<Instance> {
  const child = spawn(process.execPath, [script], {
    cwd: root,
    env: { ...baseEnv, REDIS_PORT: String(redis.port), TOKEN_SECRET: secret, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const logs: LogLine[] = []
  let buffered = ''
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`instance ${name} did not start within 30 s:\n${stderr}`)), 30_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`instance ${name} exited (${code}):\n${stderr}`))
    })
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop()!
      for (const line of lines) {
        const parsed = JSON.parse(line) as LogLine & { listening?: number }
        if (parsed.listening !== undefined) {
          clearTimeout(timer)
          resolve(parsed.listening)
        } else {
          logs.push(parsed)
        }
      }
    })
  })
  return { name, url: `http://127.0.0.1:${port}`, child, logs, stderr: () => stderr }
}

export interface Answer {
  status: number
  code: string | undefined
  body: Record<string, unknown>
  /** The token a Set-Cookie sets: a string, '' when it clears the cookie, undefined without one. */
  cookie: string | undefined
}

export async function request (instance: Instance, method: 'GET' | 'POST', path: string, token?: string, body?: object): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (token !== undefined) headers.cookie = `token=${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(instance.url + path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const parsed = await response.json() as Record<string, unknown>
  const set = response.headers.getSetCookie().find((line) => line.startsWith('token='))
  return {
    status: response.status,
    code: typeof parsed.code === 'string' ? parsed.code : undefined,
    body: parsed,
    cookie: set === undefined ? undefined : set.slice('token='.length, set.indexOf(';'))
  }
}

export const get = async (instance: Instance, path: string, token?: string): Promise<Answer> => await request(instance, 'GET', path, token)

export async function logIn (instance: Instance, sub: string): Promise<string> {
  const answer = await request(instance, 'POST', '/login', undefined, { sub })
  if (answer.status !== 200 || !answer.cookie) throw new Error(`login on ${instance.name} failed: ${answer.status}`)
  return answer.cookie
}

export function claimsOf (token: string): { sid: string, jti: string, iat: number, sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
}

/** 200, or the error code. */
export const outcome = (answer: Answer): string | number => answer.status === 200 ? 200 : answer.code ?? answer.status

export async function until (condition: () => Promise<boolean>, ms: number, every = 50): Promise<boolean> {
  const deadline = performance.now() + ms
  for (;;) {
    if (await condition()) return true
    if (performance.now() > deadline) return false
    await sleep(every)
  }
}

/** Each instance is still running, and has written nothing to stderr (no crash, no unhandled rejection). */
export function checkHealthy (t: Test, instances: Instance[]): void {
  for (const instance of instances) {
    t.equal(instance.child.exitCode, null, `${instance.name} is still running`)
    t.equal(instance.child.signalCode, null)
    t.equal(instance.stderr(), '', `${instance.name} wrote nothing to stderr`)
  }
}

export const storeLines = (instance: Instance, level: number): LogLine[] =>
  instance.logs.filter((line) => line.level === level && /revocation store/.test(line.msg))

/** Whether the built package is there for the instances to run. */
export function haveBuild (): boolean {
  return existsSync(join(root, 'dist', 'esm', 'redis.js'))
}

export interface TcpProxy {
  readonly port: number
  /** Cuts the network: every connection through the proxy is dropped, and new ones are refused. */
  cut: () => Promise<void>
  /** Heals it: the proxy listens again on the same port. */
  heal: () => Promise<void>
}

/** A TCP proxy on 127.0.0.1 to `target`, for one instance's network cut; closed in teardown. */
export async function tcpProxy (t: Test, target: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0
  const listen = async (): Promise<void> => {
    const listening = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: target })
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on('close', () => sockets.delete(socket))
        socket.on('error', () => {})
      }
      client.pipe(upstream).pipe(client)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
    server = listening
    await new Promise<void>((resolve, reject) => listening.once('error', reject).listen(port, '127.0.0.1', resolve))
    const address = listening.address()
    if (address !== null && typeof address === 'object') port = address.port
  }
  const cut = async (): Promise<void> => {
    const closing = server
    server = undefined
    for (const socket of sockets) socket.destroy()
    if (closing !== undefined) await new Promise((resolve) => closing.close(resolve))
  }
  await listen()
  t.teardown(cut)
  return { get port () { return port }, cut, heal: listen }
}
