// The process logger: JSON lines on stderr (stdout is for command output), level from
// NODENET_LOG_LEVEL (default info).
import { pino, type Logger } from 'pino';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(name: string): Logger {
  const level = process.env.NODENET_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(level)) {
    throw new Error(`NODENET_LOG_LEVEL must be one of ${LEVELS.join(', ')}, not ${JSON.stringify(level)}`);
  }
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}
