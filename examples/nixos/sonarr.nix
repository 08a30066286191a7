# Sonarr's own module: the web UI for "users", the API for the LAN's apps.
{ ... }:

let
  domain = "example.com";
in
{
  services.pocketgate.hosts."sonarr.${domain}" = {
    policy = "users";
    bypassPaths = [ "/api" "/feed" ];
    bypassResources = [ "^/api/system/status$" ];
    allowedNetworks = [ "192.168.0.0/16" ];   # API bypasses only from the LAN
  };
  services.caddy.virtualHosts."sonarr.${domain}".extraConfig = "reverse_proxy 127.0.0.1:8989";
}
