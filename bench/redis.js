// A throwaway redis-server for the Redis-store variant: 127.0.0.1, a free port, nothing written to disk.
import { spawn, spawnSync } from 'node:child_process'
import { connect, createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export function hasRedisServer () {
  return spawnSync('redis-server', ['--version']).status === 0
}

function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    }).on('error', reject)
  })
}

function answersPing (port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
    socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    socket.once('error', () => resolve(false))
  })
}

/** Starts redis-server and resolves once it answers; `stop()` ends it. */
export async function startRedis () {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  // The bench ends when its work does: the server must not keep it alive (it is stopped on exit).
  child.unref()
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await answersPing(port)) return { port, stop: () => child.kill('SIGTERM') }
    await sleep(50)
  }
  child.kill('SIGKILL')
  throw new Error('redis-server did not start')
}

/** Commands Redis has run since it started, less INFO itself (RESP over a connection of its own). */
export function commandCalls (port) {
  return new Promise((resolve, reject) => {
    let reply = ''
    const socket = connect(port, '127.0.0.1', () => socket.write('*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n'))
    socket.setEncoding('utf8')
    socket.on('data', (chunk) => {
      reply += chunk
      const length = Number(reply.slice(1, reply.indexOf('\r\n')))
      if (reply.indexOf('\r\n') === -1 || Buffer.byteLength(reply) < reply.indexOf('\r\n') + 2 + length) return
      socket.destroy()
      let calls = 0
      for (const [, name, count] of reply.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (name !== 'info') calls += Number(count)
      resolve(calls)
    })
    socket.once('error', reject)
  })
}
