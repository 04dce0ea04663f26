import { parse as parseMilliseconds } from '@lukeed/ms'

/** A number of seconds, or a string with a unit: `'250ms'`, `'90s'`, `'30m'`, `'12h'`, `'7d'`. */
export type Duration = number | `${number}${DurationUnit}` | `${number} ${DurationUnit}`

export type DurationUnit =
  | 'ms' | 'msec' | 'msecs' | 'millisecond' | 'milliseconds'
  | 's' | 'sec' | 'secs' | 'second' | 'seconds'
  | 'm' | 'min' | 'mins' | 'minute' | 'minutes'
  | 'h' | 'hr' | 'hrs' | 'hour' | 'hours'
  | 'd' | 'day' | 'days'
  | 'w' | 'week' | 'weeks'
  | 'y' | 'yr' | 'yrs' | 'year' | 'years'

// A bare numeric string would be milliseconds to `ms` but seconds as a number: too easy to misread.
const hasUnit = /[a-z]\s*$/i

/** Seconds in `value`, or `undefined` when it is not a positive, finite duration. */
export function toSeconds (value: unknown): number | undefined {
  let seconds: number | undefined
  if (typeof value === 'number') {
    seconds = value
  } else if (typeof value === 'string' && hasUnit.test(value)) {
    const milliseconds = parseMilliseconds(value)
    seconds = milliseconds === undefined ? undefined : milliseconds / 1000
  }
  return seconds !== undefined && Number.isFinite(seconds) && seconds > 0 ? seconds : undefined
}
