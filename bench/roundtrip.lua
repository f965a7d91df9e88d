-- The whole form round trip as a browser does it: GET /, parse the form token, POST it.
-- Requests alternate per thread (GET, POST, GET, ...); ROUNDTRIPS counts completed POSTs (303).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  queue = {}
  roundtrips = 0
  text = "%E9%A3%9F%E5%A0%82%E7%9A%84%E9%A5%AD%E8%8F%9C%E5%A4%AA%E5%92%B8%E4%BA%86%E3%80%82"
end

function request()
  local t = table.remove(queue, 1)
  if t then
    return wrk.format("POST", "/", {["Content-Type"] = "application/x-www-form-urlencoded"},
                      "token=" .. t .. "&category=1&body=" .. text)
  end
  return wrk.format("GET", "/")
end

function response(status, headers, body)
  if status == 303 then
    roundtrips = roundtrips + 1
  elseif status == 200 then
    local t = string.match(body, 'name="token" value="([^"]+)"')
    if t then table.insert(queue, t) end
  end
end

function done(summary, latency, requests)
  local r = 0
  for _, t in ipairs(threads) do r = r + t:get("roundtrips") end
  io.write(string.format("ROUNDTRIPS %d\n", r))
end
