# The typed options of services.pocketgate's policies and hosts (in NixOS's
# camelCase, the seed's words) and how each becomes pocketgate's snake_case
# keys; module.nix declares them and writes the keys into `settings`.
{ lib, clean, strList }:

let
  inherit (lib) mkOption types optionalAttrs;
in
rec {
  policyOptions = {
    options = {
      allowedGroups = mkOption { type = strList; default = [ ]; description = "Groups (or claim-mapped roles) that pass."; };
      allowedUsers = mkOption { type = strList; default = [ ]; description = "User names that pass."; };
      allowedNetworks = mkOption { type = strList; default = [ ]; description = "Client networks (CIDR) that pass without a login."; };
    };
  };
  policyKeys = p: clean {
    allowed_groups = p.allowedGroups;
    allowed_users = p.allowedUsers;
    allowed_networks = p.allowedNetworks;
  };

  claimRoleOptions = {
    options = {
      claim = mkOption { type = types.str; default = "groups"; description = "The ID token claim to look at."; };
      value = mkOption { type = types.str; description = "The value the claim must hold."; };
      role = mkOption { type = types.str; description = "The role (group) it counts as for this host."; };
    };
  };

  ruleOptions = {
    options = {
      paths = mkOption { type = strList; default = [ ]; description = "Path prefixes on segment boundaries."; };
      resources = mkOption { type = strList; default = [ ]; description = "Regexes on the path (paths OR resources)."; };
      methods = mkOption { type = strList; default = [ ]; description = "AND the method is one of these."; };
      networks = mkOption { type = strList; default = [ ]; description = "AND the client address is in one of these."; };
      policy = mkOption { type = types.nullOr types.str; default = null; description = "This policy decides instead of the host's."; };
      action = mkOption { type = types.nullOr (types.enum [ "bypass" "deny" ]); default = null; description = "Or: pass without identity, or 403."; };
    } // stepUpOptions "this rule";
  };
  ruleKeys = r: clean { inherit (r) paths resources methods networks policy action; } // stepUpKeys r;

  # Step-up, on hosts and on rules (a rule's value wins).
  stepUpOptions = what: {
    maxAge = mkOption { type = types.nullOr types.str; default = null; example = "10m"; description = "Step-up on ${what}: the sign-in must be at most this old (max_age)."; };
    amr = mkOption { type = strList; default = [ ]; example = [ "phr" ]; description = "Step-up on ${what}: the sign-in must have used one of these methods (Pocket ID: phr passkey, otp code)."; };
  };
  stepUpKeys = x: clean { max_age = x.maxAge; inherit (x) amr; };

  headerOptions = {
    options = lib.genAttrs [ "user" "email" "name" "groups" ] (field: mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "This host's header for the ${field} (the rest come from [headers]).";
    });
  };

  hostOptions = { name, ... }: {
    options = {
      policy = mkOption { type = types.nullOr types.str; default = null; description = "The policy for ${name} (null: default_policy)."; };
      claimRoles = mkOption { type = types.listOf (types.submodule claimRoleOptions); default = [ ]; description = "Claim values that count as roles here."; };
      bypassPaths = mkOption { type = strList; default = [ ]; description = "Path prefixes that pass without a login."; };
      bypassResources = mkOption { type = strList; default = [ ]; description = "Path regexes that pass without a login."; };
      allowedNetworks = mkOption { type = strList; default = [ ]; description = "Bypasses apply only from these networks."; };
      rules = mkOption { type = types.listOf (types.submodule ruleOptions); default = [ ]; description = "Ordered per-path rules ([[hosts.rules]])."; };
      caseInsensitivePaths = mkOption { type = types.bool; default = false; description = "Match bypass paths, resources and rules in any letter case (for backends that route so: ASP.NET Core apps such as Sonarr, Radarr, Jellyfin)."; };
      headers = mkOption { type = types.submodule headerOptions; default = { }; description = "Header names for this host's backend."; };
      idleTimeout = mkOption { type = types.nullOr types.str; default = null; example = "30m"; description = "Sign in again on ${name} after this long unused (only shortens session.idleTimeout)."; };
      lifetime = mkOption { type = types.nullOr types.str; default = null; example = "8h"; description = "Sign in again on ${name} once the session is this old (only shortens session.lifetime)."; };
    } // stepUpOptions name;
  };
  hostKeys = host: h: clean {
    inherit host;
    inherit (h) policy;
    claim_roles = map (c: { inherit (c) claim value role; }) h.claimRoles;
    bypass_paths = h.bypassPaths;
    bypass_resources = h.bypassResources;
    allowed_networks = h.allowedNetworks;
    rules = map ruleKeys h.rules;
    idle_timeout = h.idleTimeout;
    inherit (h) lifetime;
  } // stepUpKeys h
    // optionalAttrs h.caseInsensitivePaths { case_insensitive_paths = true; }
    // optionalAttrs (clean h.headers != { }) { headers = clean h.headers; };
}
