-- POST / (a submission) with a fresh, genuine one-time form token per request.
-- bench/run issues the tokens with the server's secret exactly as GET / would and writes them one
-- per line; each wrk thread takes every n-th line. So every request creates a case (no replays);
-- only if the file runs out does a thread wrap around, which then measures the replay path and is
-- reported as WRAPPED. Usage: wrk ... -s post_submit.lua URL -- TOKENS_FILE THREADS [PATH]
-- (PATH defaults to /; /w/<code>/ posts to a workshop's box).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(args[2])
  tokens = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i % n == id then tokens[#tokens + 1] = line end
    i = i + 1
  end
  path = args[3] or "/"
  pos = 1
  wrapped = 0
  other = 0
  -- "食堂的饭菜太咸了，希望改进。（压力测试）" percent-encoded
  text = "%E9%A3%9F%E5%A0%82%E7%9A%84%E9%A5%AD%E8%8F%9C%E5%A4%AA%E5%92%B8%E4%BA%86%EF%BC%8C"
    .. "%E5%B8%8C%E6%9C%9B%E6%94%B9%E8%BF%9B%E3%80%82%EF%BC%88%E5%8E%8B%E5%8A%9B%E6%B5%8B"
    .. "%E8%AF%95%EF%BC%89"
end

function request()
  local t = tokens[pos]
  pos = pos + 1
  if pos > #tokens then
    pos = 1
    wrapped = wrapped + 1
  end
  return wrk.format("POST", path, {["Content-Type"] = "application/x-www-form-urlencoded"},
                    "token=" .. t .. "&category=1&body=" .. text)
end

function response(status, headers, body)
  if status ~= 303 then other = other + 1 end
end

function done(summary, latency, requests)
  local o, w = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("other")
    w = w + t:get("wrapped")
  end
  io.write(string.format("NON303 %d\nWRAPPED %d\n", o, w))
end
