// A real redis-server for the tests: started on 127.0.0.1 on a free port, stopped in teardown, and stoppable and
// startable again (same port, same data directory) for the fault tests. No mocks of Redis anywhere.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import type { RevocationStore } from '../../index.js'
import { redisStore } from '../../redis.js'
import { findBinary } from './binaries.js'

/** The redis-server binary: `$REDIS_SERVER`, else the first on PATH (or in /usr/bin, /usr/sbin). */
export const redisServerPath: string | undefined = findBinary('redis-server', 'REDIS_SERVER')

/**
 * True when redis-server is there. Otherwise prints the one line that says how to get it, and the file
 * registers no tests.
 */
export function haveRedis (): boolean {
  if (redisServerPath !== undefined) return true
  console.log('# redis-server not found: Redis tests skipped; install it with: apt-get install -y redis-server')
  return false
}

export interface RedisServerOptions {
  /**
   * Keep the data over a stop and start: an append-only file in a temporary directory, fsynced on every write,
   * so even a `SIGKILL` loses nothing. Without it, `--save '' --appendonly no`: a restart starts empty.
   */
  persist?: boolean
  /** A node of a Redis Cluster (`--cluster-enabled yes`), its cluster configuration in the data directory. */
  cluster?: boolean
}

export interface RedisServer {
  readonly host: '127.0.0.1'
  readonly port: number
  readonly url: string
  readonly running: boolean
  /** Starts the server again on the same port (and data directory); resolves once it answers PING. */
  start: () => Promise<void>
  /** Stops the server (SIGTERM by default, SIGKILL for a crash); resolves once it has exited. */
  stop: (signal?: 'SIGTERM' | 'SIGKILL') => Promise<void>
  /** Sends one command over a connection of its own (RESP); resolves to the raw reply. */
  command: (...args: string[]) => Promise<string>
}

/** A free TCP port on 127.0.0.1, as the OS hands it out. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

function encode (args: string[]): string {
  return `*${args.length}\r\n` + args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')
}

/** One RESP command on a fresh connection; resolves to the raw reply once a complete line has come. */
async function sendCommand (port: number, args: string[], timeout = 1000): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`redis ${args[0]}: no reply within ${timeout} ms`))
    }, timeout)
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(encode(args)))
    socket.on('data', (chunk: string) => {
      reply += chunk
      if (isComplete(reply)) {
        clearTimeout(timer)
        socket.end()
        resolve(reply)
      }
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/** Enough RESP to know a simple reply or a bulk string has fully arrived. */
function isComplete (reply: string): boolean {
  if (!reply.includes('\r\n')) return false
  if (reply[0] !== '$') return true
  const length = Number(reply.slice(1, reply.indexOf('\r\n')))
  return length < 0 || Buffer.byteLength(reply) >= reply.indexOf('\r\n') + 2 + length + 2
}

/** Starts a redis-server for this test; it is stopped (and its data directory removed) in teardown. */
export async function startRedis (t: Test, { persist = false, cluster = false }: RedisServerOptions = {}): Promise<RedisServer> {
  if (redisServerPath === undefined) throw new Error('redis-server not found: apt-get install -y redis-server')
  const binary = redisServerPath
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'fastify-token-cookie-redis-'))
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    ...(persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'warning', '--logfile', '',
    ...(cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')] : [])
  ]
  let child: ChildProcess | undefined
  let output = ''

  async function start (): Promise<void> {
    if (child !== undefined) throw new Error('redis-server is already running')
    const started = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = started
    started.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    started.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const exited = new Promise<never>((resolve, reject) => started.once('exit', (code) => {
      reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`))
    }))
    exited.catch(() => {})
    const deadline = performance.now() + 10_000
    for (;;) {
      const reply = await Promise.race([sendCommand(port, ['PING'], 500).catch((error: Error) => error.message), exited])
      if (reply.startsWith('+PONG')) return
      if (performance.now() > deadline) {
        await stop('SIGKILL')
        throw new Error(`redis-server on port ${port} not ready after 10 s (last: ${reply.trim()}):\n${output}`)
      }
      await sleep(20)
    }
  }

  async function stop (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const running = child
    if (running === undefined) return
    child = undefined
    if (running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill(signal)
    await exited
  }

  t.teardown(async () => {
    await stop('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  await start()
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    get running () { return child !== undefined },
    start,
    stop,
    command: async (...command: string[]) => await sendCommand(port, command)
  }
}

/** A redisStore on a redis-server of this test, through an ioredis client closed in teardown. */
export async function redisStoreFor (t: Test): Promise<{ store: RevocationStore, client: Redis, server: RedisServer }> {
  const server = await startRedis(t)
  const client = new Redis({ host: server.host, port: server.port })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return { store: redisStore({ client }), client, server }
}

/** The redis-cli binary, which creates a cluster: `$REDIS_CLI`, else the first on PATH. */
export const redisCliPath: string | undefined = findBinary('redis-cli', 'REDIS_CLI')

/**
 * A Redis Cluster of three masters (no replicas) on free ports, for this test: created with `redis-cli --cluster
 * create`, ready once every node says `cluster_state:ok`. Each node is stopped by pid in teardown.
 */
export async function startRedisCluster (t: Test): Promise<RedisServer[]> {
  if (redisCliPath === undefined) throw new Error('redis-cli not found: apt-get install -y redis-tools')
  const nodes = await Promise.all([0, 1, 2].map(async () => await startRedis(t, { cluster: true })))
  await promisify(execFile)(redisCliPath, ['--cluster', 'create', ...nodes.map((node) => `${node.host}:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'])
  const deadline = performance.now() + 20_000
  for (;;) {
    const states = await Promise.all(nodes.map(async (node) => await node.command('CLUSTER', 'INFO')))
    if (states.every((state) => state.includes('cluster_state:ok'))) return nodes
    if (performance.now() > deadline) throw new Error(`the cluster is not ready after 20 s:\n${states.join('\n')}`)
    await sleep(50)
  }
}
