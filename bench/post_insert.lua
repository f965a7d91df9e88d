-- POST / with a small urlencoded body: for the bare Tortoise insert baseline.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "body=%E9%A3%9F%E5%A0%82%E7%9A%84%E9%A5%AD%E8%8F%9C%E5%A4%AA%E5%92%B8%E4%BA%86"
