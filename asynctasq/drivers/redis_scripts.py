"""The Lua scripts that make every Redis move atomic.

Each script runs as one command on the server, so a message is in exactly one place at any
moment (ready list, processing set, delayed set, dead list) however many workers call it at
once. Times come from the server's ``TIME`` (milliseconds), never from a client clock, so
clock skew between machines cannot fire a delayed message early.

Element layout (see :mod:`asynctasq.drivers.redis_format`): ``<id>:<vt_ms>:<count>:<body>``.
The scripts read ``vt_ms`` (lease length) and rewrite ``count`` (deliveries so far) without
decoding the body.

Scores are whole milliseconds written with ``%.0f``: Lua 5.1 would otherwise format large
numbers with 14 significant digits. A due time is ``ceil(now) + delay`` and a message is
due when its score is ``<= floor(now)``, so it is never promoted early, even by 1 ms.

Source: Redis docs, "EVAL" (scripts are atomic) and "TIME"; SPEC §5 (moves must be atomic).
"""

from __future__ import annotations

_PRELUDE = """
local function fmt(x) return string.format('%.0f', x) end
local function now_floor()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function now_ceil()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
end
local function recount(e, delta)
  local a = string.find(e, ':', 1, true)
  local b = string.find(e, ':', a + 1, true)
  local c = string.find(e, ':', b + 1, true)
  local vt = tonumber(string.sub(e, a + 1, b - 1))
  local n = tonumber(string.sub(e, b + 1, c - 1)) + delta
  return string.sub(e, 1, b) .. fmt(n) .. string.sub(e, c), vt
end
"""

ENQUEUE_DELAYED = (
    _PRELUDE
    + """
-- KEYS[1] delayed set; ARGV: delay_ms, element, delay_ms, element, ...
local now = now_ceil()
for i = 1, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], fmt(now + tonumber(ARGV[i])), ARGV[i + 1])
end
return #ARGV / 2
"""
)

CLAIM = (
    _PRELUDE
    + """
-- KEYS: ready_1, processing_1, ready_2, processing_2, ... in priority order
-- ARGV[1]: limit. Returns queue index (1-based), leased member, queue index, member, ...
local now = now_floor()
local left = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS, 2 do
  if left <= 0 then break end
  local items = redis.call('RPOP', KEYS[i], left)
  if items then
    for _, e in ipairs(items) do
      local member, vt = recount(e, 1)
      redis.call('ZADD', KEYS[i + 1], fmt(now + vt), member)
      out[#out + 1] = (i + 1) / 2
      out[#out + 1] = member
    end
    left = left - #items
  end
end
return out
"""
)

RETRY = (
    _PRELUDE
    + """
-- KEYS[1] old processing set, KEYS[2] new ready list, KEYS[3] new delayed set
-- ARGV[1] leased member, ARGV[2] delay_ms, ARGV[3] new element. Returns 1, or 0 if lost.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local delay = tonumber(ARGV[2])
if delay > 0 then
  redis.call('ZADD', KEYS[3], fmt(now_ceil() + delay), ARGV[3])
else
  redis.call('LPUSH', KEYS[2], ARGV[3])
end
return 1
"""
)

DEAD_LETTER = """
-- KEYS[1] processing set, KEYS[2] dead list; ARGV[1] leased member, ARGV[2] entry.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"""

RELEASE = (
    _PRELUDE
    + """
-- KEYS[1] processing set, KEYS[2] ready list; ARGV: members, the one to serve first LAST.
-- Each goes back to the consuming end with its count lowered again (no attempt was made).
local n = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], (recount(ARGV[i], -1)))
    n = n + 1
  end
end
return n
"""
)

EXTEND = (
    _PRELUDE
    + """
-- KEYS[1] processing set; ARGV: vt_ms, member, vt_ms, member, ... Returns leases renewed.
local now = now_floor()
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], 'XX', fmt(now + tonumber(ARGV[i])), ARGV[i + 1])
    n = n + 1
  end
end
return n
"""
)

MAINTAIN = (
    _PRELUDE
    + """
-- KEYS[1] ready list, KEYS[2] processing set, KEYS[3] delayed set; ARGV[1] batch size.
-- Due delayed messages join the producing end (FIFO by due time); expired leases return
-- to the consuming end, earliest deadline served first. Returns {promoted, recovered}.
local now = fmt(now_floor())
local limit = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
if #due > 0 then
  redis.call('ZREM', KEYS[3], unpack(due))
  redis.call('LPUSH', KEYS[1], unpack(due))
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
if #expired > 0 then
  redis.call('ZREM', KEYS[2], unpack(expired))
  local back = {}
  for i = #expired, 1, -1 do back[#back + 1] = expired[i] end
  redis.call('RPUSH', KEYS[1], unpack(back))
end
return {#due, #expired}
"""
)

REQUEUE_DEAD = """
-- KEYS[1] dead list, KEYS[2] ready list; ARGV: entry, element, entry, element, ...
-- Each entry still present is removed and its element pushed; returns how many moved.
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) > 0 then
    redis.call('LPUSH', KEYS[2], ARGV[i + 1])
    n = n + 1
  end
end
return n
"""

PURGE_DEAD = """
-- KEYS[1] dead list. Returns how many entries were deleted.
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
"""

MAINTAIN_BATCH = 1000
"""Messages moved per ``MAINTAIN`` call and kind; the driver calls again while a batch is full."""
