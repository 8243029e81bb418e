# frozen_string_literal: true

require_relative "test_helper"
require "fiber_link/qr"
require "rqrcode"
require "base64"

# The invoice QR code: the SVG path must draw exactly rqrcode's modules.
class QrTest < Minitest::Test
  INVOICE = "fibd250000000#{"qpzry9x8gf2tvdw0s3jn54khce6mua7l" * 12}".freeze

  def raster(svg)
    size = svg[/viewBox="0 0 (\d+) \d+"/, 1].to_i
    grid = Array.new(size) { Array.new(size, false) }
    svg[/<path d="([^"]*)"/, 1].scan(/M(\d+) (\d+)h(\d+)v1h-(\d+)z/) do |x, y, run, back|
      assert_equal run, back
      run.to_i.times { |i| grid[y.to_i][x.to_i + i] = true }
    end
    grid
  end

  def test_the_svg_draws_exactly_the_qr_modules_with_a_quiet_zone
    modules = RQRCode::QRCode.new(INVOICE, level: :m).modules
    grid = raster(FiberLink::Qr.svg(INVOICE))
    q = FiberLink::Qr::QUIET_ZONE
    assert_equal modules.size + (2 * q), grid.size
    inner = grid[q...(q + modules.size)].map { |row| row[q...(q + modules.size)] }
    assert_equal modules, inner
    assert(grid.first(q).flatten.none?, "quiet zone stays empty")
  end

  def test_the_data_url_is_a_compact_svg
    url = FiberLink::Qr.data_url(INVOICE)
    assert url.start_with?("data:image/svg+xml;base64,")
    svg = Base64.strict_decode64(url.split(",", 2)[1])
    assert svg.start_with?("<svg xmlns=")
    assert_operator url.bytesize, :<, 40_000
  end
end
