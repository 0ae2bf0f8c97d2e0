-- wrk script for the Canvas benchmark (driven by bench/wrk.py, which passes every argument).
--
--   wrk -s bench/ingest.lua URL -- MODE RUN PREFIX SUFFIX BATCH_SIZE THINK_MS IDS_DIR
--
-- MODE       "event": one event per request, each with a unique messageId; "batch": BATCH_SIZE events in
--            {"batch": [...]}; "hello": the same body as "event", for the hello-world app.
-- RUN        a name unique to this wrk run; messageIds are "<RUN>-<thread>-<counter>", so no two requests
--            of the whole benchmark carry the same one.
-- PREFIX, SUFFIX  the event's JSON around its messageId (bench/payloads.py builds them, so the rows COPY writes in
--            B0-copy are the same events).
-- THINK_MS   0 for a closed loop (each connection sends as soon as it has its answer); above 0, each
--            connection waits a random time of that mean (exponential) before its next request: a fixed
--            offered rate, for the latency at 80% of the maximum.
-- IDS_DIR    where each thread writes the ids of the events the server acknowledged as stored, for
--            reconciliation; the C library flushes the files when wrk exits.
--
-- The X-Auth-Token header comes from the environment (BENCH_TOKEN), so the token is not on a command line.
-- done() prints one line "BENCH_RESULT {json}" that bench/wrk.py reads.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_number", #threads)
end

function init(args)
   mode, run, prefix, suffix = args[1], args[2], args[3], args[4]
   batch_size = tonumber(args[5])
   think_ms = tonumber(args[6])
   counter = 0
   acknowledged, duplicates, refused = 0, 0, 0
   id_prefix = run .. "-" .. thread_number .. "-"
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["X-Auth-Token"] = os.getenv("BENCH_TOKEN") or ""
   if mode ~= "hello" then
      ids_file = assert(io.open(args[7] .. "/" .. run .. "-" .. thread_number .. ".ids", "w"))
   end
   math.randomseed(os.time() + thread_number)
   if think_ms <= 0 then
      -- wrk looks for delay() after init(): without it, the closed loop pays no timer per request.
      delay = nil
   end
end

local function next_event()
   counter = counter + 1
   return prefix .. id_prefix .. counter .. suffix
end

function request()
   local body
   if mode == "batch" then
      -- One concatenation for the whole body, not a string per event and another for the body.
      local parts, n = { '{"batch":[' }, 1
      for i = 1, batch_size do
         counter = counter + 1
         parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4], parts[n + 5] = prefix, id_prefix, counter, suffix, ","
         n = n + 5
      end
      parts[n] = "]}"
      body = table.concat(parts)
   else
      body = next_event()
   end
   return wrk.format(nil, nil, nil, body)
end

function delay()
   -- wrk truncates to whole milliseconds; adding a uniform [0, 1) keeps the mean right.
   return math.floor(-math.log(1 - math.random()) * think_ms + math.random())
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      refused = refused + 1
   elseif mode == "event" then
      local id = body:match('"id":%s*(%d+)')
      if id and body:find('"duplicate":%s*false') then
         acknowledged = acknowledged + 1
         ids_file:write(id, "\n")
      else
         duplicates = duplicates + 1
      end
   elseif mode == "batch" then
      -- A 200 means every event of the batch was stored or was a duplicate; each messageId is new, so every
      -- receipt should say "stored". Count them rather than assume it. A receipt is
      -- {"stored": n, ..., "results": [{"index": 0, "status": "stored", "id": 42}, ...]}: one pattern per
      -- receipt (the server writes "status" before "id") and one write per batch, as wrk shares the cores it
      -- measures (docs/performance.md#how-the-benchmark-measures).
      local ids, stored = {}, 0
      for id in body:gmatch('"status":%s*"stored",%s*"id":%s*(%d+)') do
         stored = stored + 1
         ids[stored] = id
      end
      if stored > 0 then
         ids[stored + 1] = ""
         ids_file:write(table.concat(ids, "\n"))
      end
      acknowledged = acknowledged + stored
      duplicates = duplicates + (batch_size - stored)
   else
      acknowledged = acknowledged + 1
   end
end

function done(summary, latency, requests)
   local totals = { acknowledged = 0, duplicates = 0, refused = 0 }
   for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + thread:get(name)
      end
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,"
         .. "\"errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d},"
         .. "\"acknowledged\":%d,\"duplicates\":%d,\"refused\":%d,"
         .. "\"latency_us\":{\"mean\":%.1f,\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d,\"max\":%d}}\n",
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      totals.acknowledged, totals.duplicates, totals.refused,
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
