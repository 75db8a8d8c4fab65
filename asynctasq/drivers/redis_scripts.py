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

No script raises half-way on data someone else wrote (Redis does not roll a script back, so
an error after the first write would strand or lose messages):

* an element without a valid header (pushed by hand, by another program) is claimed with
  a synthesized one: a fresh id (the caller's nonce + ``g`` + a counter, never a hex-only
  id the driver writes), the default lease and count 1; its whole bytes are the body, so
  the worker's decoder dead-letters it as undecodable, raw bytes kept;
* a key of the wrong type is checked (``TYPE``) before any write and answered with a
  ``WRONGTYPE`` error naming it, so nothing has moved when the driver raises.

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
-- The header <id>:<vt_ms>:<count>: of an element, or nil when it has none we wrote.
local function header(e)
  local id, vt, n = string.match(e, '^([^:]+):(%d+):(%d+):')
  if id == nil or #id > 64 or #vt > 12 or #n > 12 or tonumber(vt) < 1 then return nil end
  return id, vt, n
end
-- The element with its count moved by delta, and its lease (ms). A foreign element gets a
-- header: id fresh_id, lease default_vt, count max(delta, 0); its whole bytes are the body.
local function recount(e, delta, fresh_id, default_vt)
  local id, vt, n = header(e)
  if id == nil then
    return fresh_id .. ':' .. default_vt .. ':' .. fmt(math.max(delta, 0)) .. ':' .. e,
      tonumber(default_vt)
  end
  local rest = string.sub(e, #id + #vt + #n + 3)
  return id .. ':' .. vt .. ':' .. fmt(math.max(tonumber(n) + delta, 0)) .. rest, tonumber(vt)
end
-- A WRONGTYPE error reply naming the first key that holds another type, or nil.
-- kinds: key, expected type, key, expected type, ...
local function wrong_type(kinds)
  for i = 1, #kinds, 2 do
    local t = redis.call('TYPE', kinds[i])['ok']
    if t ~= 'none' and t ~= kinds[i + 1] then
      return redis.error_reply('WRONGTYPE asynctasq key ' .. kinds[i] .. ' holds a ' .. t
        .. ', not a ' .. kinds[i + 1] .. '; nothing was moved')
    end
  end
  return nil
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
-- KEYS: ready_1, processing_1, ready_2, processing_2, ... in priority order, then the
-- driver's claim record (a hash: n = the last claim number, r = its packed result).
-- ARGV[1]: limit, ARGV[2]: a nonce for synthesized ids, ARGV[3]: default lease (ms),
-- ARGV[4]: this claim's number (grows by one per claim of this driver; repeated when the
-- reply to a claim was lost), ARGV[5]: how long the record is kept (ms).
-- Returns processing key, leased member, processing key, member, ...
-- A claim whose number was already answered returns that answer again and moves nothing;
-- an older number (a copy of an earlier call arriving late) returns nothing.
local rec = KEYS[#KEYS]
local number = tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', rec, 'n') or '0')
if number < last then return {} end
if number == last then
  local answer = redis.call('HGET', rec, 'r')
  if answer then return cmsgpack.unpack(answer) end
  return {}
end
local kinds = {}
for i = 1, #KEYS - 1, 2 do
  kinds[#kinds + 1] = KEYS[i]
  kinds[#kinds + 1] = 'list'
  kinds[#kinds + 1] = KEYS[i + 1]
  kinds[#kinds + 1] = 'zset'
end
local bad = wrong_type(kinds)
if bad then return bad end
local now = now_floor()
local left = tonumber(ARGV[1])
local out = {}
local k = 0
for i = 1, #KEYS - 1, 2 do
  if left <= 0 then break end
  local items = redis.call('RPOP', KEYS[i], left)
  if items then
    for _, e in ipairs(items) do
      k = k + 1
      local member, vt = recount(e, 1, ARGV[2] .. 'g' .. k, ARGV[3])
      redis.call('ZADD', KEYS[i + 1], fmt(now + vt), member)
      out[#out + 1] = KEYS[i + 1]
      out[#out + 1] = member
    end
    left = left - #items
  end
end
redis.call('HSET', rec, 'n', ARGV[4], 'r', cmsgpack.pack(out))
redis.call('PEXPIRE', rec, ARGV[5])
return out
"""
)

RETRY = (
    _PRELUDE
    + """
-- KEYS[1] old processing set, KEYS[2] new ready list, KEYS[3] new delayed set
-- ARGV[1] leased member, ARGV[2] delay_ms, ARGV[3] new element. Returns 1, or 0 if lost.
local delay = tonumber(ARGV[2])
local bad
if delay > 0 then
  bad = wrong_type({KEYS[1], 'zset', KEYS[3], 'zset'})
else
  bad = wrong_type({KEYS[1], 'zset', KEYS[2], 'list'})
end
if bad then return bad end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if delay > 0 then
  redis.call('ZADD', KEYS[3], fmt(now_ceil() + delay), ARGV[3])
else
  redis.call('LPUSH', KEYS[2], ARGV[3])
end
return 1
"""
)

DEAD_LETTER = (
    _PRELUDE
    + """
-- KEYS[1] processing set, KEYS[2] dead list; ARGV[1] leased member, ARGV[2] entry.
local bad = wrong_type({KEYS[1], 'zset', KEYS[2], 'list'})
if bad then return bad end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"""
)

RELEASE = (
    _PRELUDE
    + """
-- KEYS[1] processing set, KEYS[2] ready list; ARGV: members, the one to serve first LAST.
-- Each goes back to the consuming end with its count lowered again (no attempt was made).
local bad = wrong_type({KEYS[1], 'zset', KEYS[2], 'list'})
if bad then return bad end
local n = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    -- members come from CLAIM, so they have a header; one without keeps its bytes as is
    local e = ARGV[i]
    if header(e) then e = recount(e, -1) end
    redis.call('RPUSH', KEYS[2], e)
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
-- KEYS[1] ready list, KEYS[2] processing set, KEYS[3] delayed set, KEYS[4] grab registry;
-- ARGV[1] batch size.
-- Due delayed messages join the producing end (FIFO by due time); expired leases
-- return to the consuming end, earliest deadline served first. Members move as they are (a
-- foreign one gets its header when claimed). Grab lists whose registration expired (their
-- worker died between BLMOVE and ADOPT) go back to the consuming end of their queue with
-- their count raised: the attempt may have started. Returns {promoted, recovered (leases
-- and grabbed), the earliest due time left in the delayed set (ms, as text) or nil, now
-- (ms, as text)}.
local bad = wrong_type({KEYS[1], 'list', KEYS[2], 'zset', KEYS[3], 'zset', KEYS[4], 'zset'})
if bad then return bad end
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
local recovered = #expired
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, limit)
for _, grab in ipairs(lapsed) do
  local q = string.match(grab, '^asynctasq:grab:[^:]+:(.+)$')
  local ready = q and ('queue:' .. q)
  local kind = ready and redis.call('TYPE', ready)['ok']
  if kind ~= 'list' and kind ~= 'none' then
    ready = nil  -- another program's key: leave the grab list where it is
  end
  if ready and redis.call('TYPE', grab)['ok'] == 'list' then
    -- newest grabbed first; the oldest must end at the consuming (right) end
    local items = redis.call('LRANGE', grab, 0, -1)
    for _, e in ipairs(items) do
      if header(e) then e = recount(e, 1) end
      redis.call('RPUSH', ready, e)
    end
    recovered = recovered + #items
    redis.call('DEL', grab)
  end
  redis.call('ZREM', KEYS[4], grab)
end
local next_due = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {#due, recovered, next_due[2] or false, now}
"""
)

GRAB_REGISTER = """
-- KEYS[1] grab registry; ARGV[1] grab list key, ARGV[2] ms it stays registered.
-- Scored by the server clock, like every other deadline.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
return 1
"""

ADOPT = (
    _PRELUDE
    + """
-- KEYS[1] grab list, KEYS[2] processing set; ARGV: element, member, vt_ms, ... (triples).
-- Each element still in the grab list leaves it and is leased as member (its count already
-- raised by the client, as CLAIM would). Returns how many were adopted; one that is gone was
-- recovered by MAINTAIN after its registration lapsed (its lease is lost).
local bad = wrong_type({KEYS[1], 'list', KEYS[2], 'zset'})
if bad then return bad end
local now = now_floor()
local n = 0
for i = 1, #ARGV, 3 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], fmt(now + tonumber(ARGV[i + 2])), ARGV[i + 1])
    n = n + 1
  end
end
return n
"""
)

UNGRAB = (
    _PRELUDE
    + """
-- KEYS[1] grab list, KEYS[2] ready list, KEYS[3] grab registry; ARGV: elements to put back,
-- or none for all of them (then the list is unregistered too). They return unchanged to
-- the consuming end, the oldest grabbed served first. Returns how many moved.
local bad = wrong_type({KEYS[1], 'list', KEYS[2], 'list'})
if bad then return bad end
local n = 0
if #ARGV == 0 then
  local items = redis.call('LRANGE', KEYS[1], 0, -1)
  for _, e in ipairs(items) do redis.call('RPUSH', KEYS[2], e) end
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], KEYS[1])
  return #items
end
for i = 1, #ARGV do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    n = n + 1
  end
end
return n
"""
)

REQUEUE_DEAD = (
    _PRELUDE
    + """
-- KEYS[1] dead list, KEYS[2] ready list; ARGV: entry, element, entry, element, ...
-- Each entry still present is removed and its element pushed; returns how many moved.
local bad = wrong_type({KEYS[1], 'list', KEYS[2], 'list'})
if bad then return bad end
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) > 0 then
    redis.call('LPUSH', KEYS[2], ARGV[i + 1])
    n = n + 1
  end
end
return n
"""
)

PURGE_DEAD = """
-- KEYS[1] dead list. Returns how many entries were deleted.
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
"""

HEARTBEAT = """
-- KEYS[1] workers hash; ARGV[1] worker id, ARGV[2] ttl_ms, ARGV[3] JSON record.
-- Stamps the record with the server time; the hash lives at least ttl_ms more.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', now) .. ':' .. ARGV[2] .. ':' .. ARGV[3])
local left = redis.call('PTTL', KEYS[1])
if left < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

LIVE_WORKERS = """
-- KEYS[1] workers hash. Drops entries past their ttl (server time); returns the others.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local a = string.find(v, ':', 1, true)
  local b = a and string.find(v, ':', a + 1, true)
  local at = a and tonumber(string.sub(v, 1, a - 1))
  local ttl = b and tonumber(string.sub(v, a + 1, b - 1))
  if at == nil or ttl == nil or at + ttl <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = v
  end
end
return out
"""

MAINTAIN_BATCH = 1000
"""Messages moved per ``MAINTAIN`` call and kind; the driver calls again while a batch is full."""
