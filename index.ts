// fastify-token-cookie: signed JWTs in cookies with session, persistent or sliding lifetimes.
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { createCookieWriter } from './lib/cookie.js'
import { createSessionHandlers, kSession } from './lib/hook.js'
import { resolveOptions, type ResolvedOptions } from './lib/options.js'
import { createCodec, type JwtSignerVerifier } from './lib/token.js'
import type { TokenCookieOptions } from './types/index.js'

export type * from './types/index.js'
export {
  OptionsError, TokenExpiredError, TokenInvalidError, TokenMissingError, TokenRevokedError, TokenTooLargeError
} from './lib/errors.js'

// @fastify/jwt under its own namespace, in a context of its own: the app's @fastify/jwt, if any, is untouched.
const jwtNamespace = 'tokenCookie'

async function registerJwt (app: FastifyInstance, options: ResolvedOptions): Promise<JwtSignerVerifier> {
  let jwt: JwtSignerVerifier | undefined
  await app.register(async function tokenCookieJwt (child) {
    await child.register(fastifyJwt, { namespace: jwtNamespace, secret: options.secret, sign: options.sign, verify: options.verify })
    jwt = (child.jwt as unknown as Record<string, JwtSignerVerifier>)[jwtNamespace]
  })
  return jwt!
}

const plugin: FastifyPluginAsync<TokenCookieOptions> = async function fastifyTokenCookie (app, pluginOptions) {
  const options = resolveOptions(pluginOptions)
  if (!app.hasReplyDecorator('setCookie')) await app.register(fastifyCookie)
  const codec = createCodec(await registerJwt(app, options), options.algorithm)
  const cookie = createCookieWriter(options.cookieName, options.cookie, options.expiryHint, app.serializeCookie)
  const handlers = createSessionHandlers(options, codec, cookie)

  app.decorateRequest(kSession, null)
  app.decorateRequest('verifyToken', handlers.verifyToken)
  app.decorateRequest('tokenExpiry', handlers.tokenExpiry)
  app.decorateReply('setTokenCookie', handlers.setTokenCookie)
  app.decorateReply('clearTokenCookie', handlers.clearTokenCookie)
  app.addHook('onRequest', handlers.onRequest)
  app.addHook('onSend', handlers.onSend)
}

export const tokenCookie = fp(plugin, { name: 'fastify-token-cookie', fastify: '5.x' })
export default tokenCookie
