# frozen_string_literal: true

# The harness's forum server: a small Rack app (Debian's ruby-rack + ruby-webrick) that serves
# the page and the bundle, and mounts the plugin's real proxy core (FiberLink::RpcProxy) at
# POST /fiber-link/rpc, forwarding through the plugin's real FiberLink::Client to the real
# Fiber Link service. Only Discourse is stood in for: the viewer comes from a cookie and the
# posts from a fixed list.
#
#   ruby tests/plugin/server.rb PORT    (env: FIBER_LINK_API_URL, FIBER_LINK_APP_ID,
#                                          FIBER_LINK_APP_SECRET)
# Prints "listening on http://127.0.0.1:PORT" when ready.

$LOAD_PATH.unshift File.expand_path("../../plugins/discourse-fiber-link/lib", __dir__)

require "json"
require "logger"
require "rack"
require "rack/handler/webrick"
require "yaml"
require "fiber_link/client"
require "fiber_link/qr"
require "fiber_link/rpc_proxy"
require "fiber_link/post_totals"
require "fiber_link/settled_feed_sync"

PLUGIN = File.expand_path("../../plugins/discourse-fiber-link", __dir__)
HERE = __dir__

# Numeric ids like Discourse's, different on every start so runs never share a user.
base = (Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond) % 100_000_000) * 10
USERS = { "carol" => (base + 1).to_s, "bob" => (base + 2).to_s }.freeze
NAMES = USERS.invert.freeze
POSTS = [
  { id: (base + 101).to_s, author: "bob", cooked: "Bob explains how Fiber channels route payments." },
  { id: (base + 102).to_s, author: "carol", cooked: "Carol's own post (no Tip button for her)." },
].freeze

# Site settings as Discourse would serve them to the client: the client: true ones, defaults.
settings = YAML.safe_load_file(File.join(PLUGIN, "config/settings.yml"))["plugins"]
CLIENT_SETTINGS = settings.select { |_, v| v["client"] }.transform_values { |v| v["default"] }
                          .merge("fiber_link_enabled" => true).freeze
LOCALE = YAML.safe_load_file(File.join(PLUGIN, "config/locales/client.en.yml"))["en"]["js"]

# Every call that reaches the service, so a test can check what was (not) forwarded.
class Recorder
  attr_reader :calls

  def initialize(client)
    @client = client
    @calls = []
    @lock = Mutex.new
  end

  def call(method, params = {})
    @lock.synchronize { @calls << { "method" => method, "params" => params } }
    @client.call(method, params)
  end
end

CLIENT = Recorder.new(
  FiberLink::Client.new(
    base_url: ENV.fetch("FIBER_LINK_API_URL"),
    app_id: ENV.fetch("FIBER_LINK_APP_ID"),
    secret: ENV.fetch("FIBER_LINK_APP_SECRET"),
  ),
)

PROXY = FiberLink::RpcProxy.new(
  client: CLIENT,
  enabled: -> { true },
  tip_limits: lambda do
    { min: CLIENT_SETTINGS["fiber_link_tip_min_amount"], max: CLIENT_SETTINGS["fiber_link_tip_max_amount"] }
  end,
  post_lookup: lambda do |post_id, _viewer|
    post = POSTS.find { |p| p[:id] == post_id.to_s }
    post && FiberLink::RpcProxy::PostRef.new(id: post[:id], author_id: USERS[post[:author]])
  end,
  user_lookup: ->(ids) { ids.to_h { |id| [id, NAMES[id] || id] } },
  qr: ->(text) { FiberLink::Qr.data_url(text) },
  logger: Logger.new($stderr),
)

# The posts' totals as the plugin keeps them: cached, and dropped for a post when the settled-tips
# feed (the job's, run here before each page) shows a new settlement on it.
TOTALS = FiberLink::PostTotals.new(client: CLIENT, cache: FiberLink::PostTotals::MemoryCache.new)
FEED_STORE = FiberLink::SettledFeedSync::MemoryStore.new
def settled_feed(notifier)
  FiberLink::SettledFeedSync.new(client: CLIENT, store: FEED_STORE, notifier:, page_size: 500, max_pages: 1000).run
end
settled_feed(->(_tip) {}) # start at the feed's end: earlier runs' tips are not this forum's posts
FEED_LOCK = Mutex.new

def json(status, body)
  [status, { "content-type" => "application/json" }, [JSON.generate(body)]]
end

def file(path, type)
  return [404, {}, ["not built: #{path}"]] unless File.exist?(path)

  [200, { "content-type" => type, "cache-control" => "no-store" }, [File.binread(path)]]
end

APP = lambda do |env|
  req = Rack::Request.new(env)
  viewer_name = req.cookies["harness_user"]
  viewer_id = USERS[viewer_name]
  case [req.request_method, req.path_info]
  when %w[GET /]
    file(File.join(HERE, "harness.html"), "text/html; charset=utf-8")
  when %w[GET /harness.js]
    file(File.join(HERE, "dist/harness.js"), "text/javascript")
  when %w[GET /fiber-link.css]
    file(File.join(HERE, "dist/fiber-link.css"), "text/css")
  when %w[GET /boot.json]
    # What Discourse's serializers would give this viewer, including fiber_link_can_tip and the
    # totals (one post.totals call for every post not cached).
    totals = FEED_LOCK.synchronize do
      settled_feed(->(tip) { TOTALS.invalidate([tip["post_id"].to_s]) })
      TOTALS.for_posts(POSTS.map { |p| p[:id] })
    end
    posts = POSTS.map do |p|
      { id: p[:id], username: p[:author], cooked: p[:cooked],
        fiber_link_can_tip: !viewer_id.nil? && USERS[p[:author]] != viewer_id,
        fiber_link_totals: totals[p[:id]] || [] }
    end
    current_user = viewer_id && { id: viewer_id, username: viewer_name }
    json(200, { locale: LOCALE, siteSettings: CLIENT_SETTINGS, currentUser: current_user, posts: })
  when ["POST", "/fiber-link/rpc"]
    # Discourse's ensure_logged_in and CSRF check, reduced to what the harness needs.
    return json(403, { errors: ["not logged in"], error_type: "not_logged_in" }) unless viewer_id
    return json(403, { errors: ["BAD CSRF"] }) unless req.get_header("HTTP_X_CSRF_TOKEN")

    payload =
      begin
        JSON.parse(req.body.read)
      rescue JSON::ParserError
        nil
      end
    unless payload.is_a?(Hash)
      return json(200, { error: { code: -32_700, reason: "parse_error", message: "bad body" } })
    end

    viewer = FiberLink::RpcProxy::Viewer.new(id: viewer_id, admin: false)
    status, body = PROXY.call(viewer:, method: payload["method"].to_s, params: payload["params"] || {})
    json(status, body)
  when %w[GET /__calls]
    json(200, CLIENT.calls)
  else
    [404, { "content-type" => "text/plain" }, ["not found"]]
  end
end

port = Integer(ARGV.fetch(0, "0"))
Rack::Handler::WEBrick.run(
  APP,
  Host: "127.0.0.1",
  Port: port,
  Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN),
  AccessLog: [],
  StartCallback: -> { $stdout.puts("listening on http://127.0.0.1:#{port}") || $stdout.flush },
)
