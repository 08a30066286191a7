# Grafana's own module: the service declares its protection next to itself.
{ ... }:

let
  domain = "example.com";
in
{
  services.pocketgate.hosts."grafana.${domain}" = {
    policy = "admins";
    # Pocket ID group "grafana-admins" also counts as the "admins" role here.
    claimRoles = [ { claim = "groups"; value = "grafana-admins"; role = "admins"; } ];
    bypassPaths = [ "/api/health" ];
    allowedNetworks = [ "10.50.0.0/16" ];     # only the monitoring network skips the login on /api/health
    headers.user = "X-WEBAUTH-USER";          # Grafana's default auth.proxy header_name
    idleTimeout = "30m";                      # admins sign in again here after 30 minutes unused
  };
  services.caddy.virtualHosts."grafana.${domain}".extraConfig = "reverse_proxy 127.0.0.1:3000";
}
