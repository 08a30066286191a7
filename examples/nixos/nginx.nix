# nginx instead of Caddy: import this module too (and leave out the
# services.caddy lines of the others). NixOS's recommended proxy settings and
# WebSocket locations work as they are: the wiring puts pocketgate's identity
# headers into every location of a protected host, beside NixOS's own lines.
{ ... }:

let
  domain = "example.com";
in
{
  services.pocketgate.nginx.enable = true;
  services.nginx = {
    enable = true;
    recommendedProxySettings = true;
    virtualHosts."grafana.${domain}".locations."/" = {
      proxyPass = "http://127.0.0.1:3000";
      proxyWebsockets = true;                 # Grafana Live
    };
    virtualHosts."sonarr.${domain}".locations."/" = {
      proxyPass = "http://127.0.0.1:8989";
      proxyWebsockets = true;                 # Sonarr's SignalR
    };
    virtualHosts."lan.${domain}".locations."/".proxyPass = "http://127.0.0.1:8080";
    # TLS as usual, e.g. forceSSL = true; enableACME = true; on each virtual host.
  };
}
