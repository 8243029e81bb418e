# frozen_string_literal: true

require "base64"

module FiberLink
  # The QR code of an invoice, as an SVG data URL for an <img>. rqrcode computes the modules
  # (Discourse bundles it for second-factor setup; Debian ships it as ruby-rqrcode); the SVG is
  # one path of horizontal runs, a few kilobytes even for a long invoice.
  module Qr
    QUIET_ZONE = 4

    def self.data_url(text)
      "data:image/svg+xml;base64,#{Base64.strict_encode64(svg(text))}"
    end

    def self.svg(text)
      require "rqrcode"
      modules = RQRCode::QRCode.new(text.to_s, level: :m).modules
      size = modules.size + (2 * QUIET_ZONE)
      path = +""
      modules.each_with_index do |row, y|
        x = 0
        while x < row.size
          if row[x]
            run = 1
            run += 1 while x + run < row.size && row[x + run]
            path << "M#{x + QUIET_ZONE} #{y + QUIET_ZONE}h#{run}v1h-#{run}z"
            x += run
          else
            x += 1
          end
        end
      end
      %(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 #{size} #{size}" shape-rendering="crispEdges">) +
        %(<rect width="#{size}" height="#{size}" fill="#fff"/><path d="#{path}" fill="#000"/></svg>)
    end
  end
end
