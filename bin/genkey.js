#!/usr/bin/env node
// npx fastify-token-cookie-genkey: prints a new HMAC secret for the plugin's `secret` option,
// 32 random bytes (the minimum the plugin accepts, 256 bits) in base64url, so it fits an environment variable.
import { randomBytes } from 'node:crypto'

console.log(randomBytes(32).toString('base64url'))
