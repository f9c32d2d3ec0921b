-- wrk script: OsmAnd fixes from many devices, each device's timestamps increasing.
-- Set by the bench via environment: BENCH_DEVICES (count), BENCH_ID_BASE (first unique id), BENCH_T0.
local devices = tonumber(os.getenv("BENCH_DEVICES") or "200")
local id_base = tonumber(os.getenv("BENCH_ID_BASE") or "500000000000000")
local t0 = tonumber(os.getenv("BENCH_T0") or "1700000000")
local counter = 0
local thread_offset = 0

function setup(thread)
  thread:set("thread_offset", thread_offset)
  thread_offset = thread_offset + 1
end

function request()
  counter = counter + 1
  local device = (counter + thread_offset * 7919) % devices
  local step = math.floor(counter / devices)
  local lat = 43.2965 + (step % 100) * 0.00001
  local path = string.format("/?id=%d&timestamp=%d&lat=%.6f&lon=5.369800&speed=1.2&bearing=90&accuracy=8&batt=87",
    id_base + device, t0 + step * 5 + thread_offset, lat)
  return wrk.format("GET", path)
end
