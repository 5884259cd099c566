// keyfix differential-test oracle: translation and evaluation (library).
// driver.mjs (JSON lines on stdin/stdout) and bench_driver.mjs use it.
//
// The driver reads JSON lines on stdin and writes exactly one JSON line per input line on
// stdout, in order.  Each input line is either a bare keyfix simulate document
// (contract: src/keyfix/schemas/simulate.schema.json, described in
// docs/contract.md) or an envelope {"id": ..., "doc": {...}}.
// Each output line is
//
//   {"id": ..., "decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | null,
//    "error": null | "message", "ignored_context_keys": [...], "runs": n}
//
// The decision comes from @cloud-copilot/iam-simulate (AGPL-3.0-or-later).  That
// package is only *used* here as an external test oracle: `npm ci --prefix
// tests/oracle` installs it into the git-ignored tests/oracle/node_modules.  No code
// of it is copied into this repository and keyfix never depends on it at runtime.
//
// Translation from keyfix's input format to iam-simulate's `Simulation`:
//   request.principal/action/resource/resource_account -> request.{principal,action,resource}
//   request.context  + keys the request implies        -> request.contextVariables
//   resource_policy       -> resourcePolicy (the KMS key policy)
//   identity_policies[i]  -> identityPolicies[{name: "identity_policies[i]"}]
//   permission_boundaries -> permissionBoundaryPolicies (see "boundaries" below)
//   scps[level]           -> serviceControlPolicies[{orgIdentifier: "scps[level]"}]
//   rcps[level]           -> resourceControlPolicies (see "RCPs" below)
//   session_policy        -> sessionPolicy
//   grants                -> not modelled by iam-simulate; reported in "unsupported"
//                            and otherwise ignored (the harness accounts for them).
//
// Boundaries: keyfix's contract says every listed boundary must allow (the
// intersection).  iam-simulate evaluates all boundary documents as one policy set
// (a union).  With more than one boundary the driver runs one simulation per
// boundary and keeps the most restrictive result; boundaries only ever restrict,
// so "allowed under each boundary separately" is the intersection.
//
// RCPs: AWS attaches RCPFullAWSAccess to every root/OU/account and it cannot be
// detached; custom RCP statements can only Deny
// (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_syntax.html).
// iam-simulate adds RCPFullAWSAccess to every level implicitly and rejects Allow
// statements, while keyfix takes each level literally ("an empty level allows
// nothing").  The driver therefore removes the full-access Allow statement from
// each level and reports an error for a level that does not contain it (such a
// level cannot exist in AWS, and iam-simulate cannot express it).
//
// Implied context keys (added only when the case does not give them), per
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
// and https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-caller-account :
//   aws:PrincipalArn        user/role/root: the ARN itself; assumed-role session: the
//                           role ARN (arn:aws:iam::A:role/NAME; a session ARN does not
//                           carry the role's path, so cases with a path give it);
//                           federated user: its federated-user ARN
//   aws:PrincipalAccount    the principal's account
//   kms:CallerAccount       the principal's account
//   aws:PrincipalIsAWSService  "true" for a service principal, "false" otherwise
//   aws:PrincipalServiceName   the service principal itself
//   aws:PrincipalType       Account | User | FederatedUser | AssumedRole
//   aws:username            an IAM user's friendly name (users only)
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#principaltable)
// iam-simulate silently drops context keys that the Service Authorization
// Reference does not list for the action; the dropped keys that the *case* gave
// are reported in ignored_context_keys so the harness can catch unrealistic cases.

import { runSimulation } from '@cloud-copilot/iam-simulate';

const RANK = { Allowed: 0, ImplicitlyDenied: 1, ExplicitlyDenied: 2 };

function isServicePrincipal(p) {
  return typeof p === 'string' && !p.startsWith('arn:') && p.endsWith('.amazonaws.com');
}

function principalAccount(p) {
  if (typeof p !== 'string' || !p.startsWith('arn:')) return undefined;
  const parts = p.split(':');
  return parts.length >= 6 && /^[0-9]{12}$/.test(parts[4]) ? parts[4] : undefined;
}

function principalArnFor(p) {
  const parts = p.split(':');
  if (parts.length < 6) return undefined;
  const [, partition, service, , account, ...rest] = parts;
  const resource = rest.join(':');
  if (service === 'sts' && resource.startsWith('assumed-role/')) {
    const roleName = resource.split('/')[1];
    return `arn:${partition}:iam::${account}:role/${roleName}`;
  }
  if (service === 'sts' && resource.startsWith('federated-user/')) return p;
  if (service === 'iam') return p;
  return undefined;
}

function hasKey(ctx, key) {
  const lower = key.toLowerCase();
  return Object.keys(ctx).some((k) => k.toLowerCase() === lower);
}

export function impliedContext(principal, given) {
  const ctx = { ...(given || {}) };
  const put = (k, v) => {
    if (v !== undefined && !hasKey(ctx, k)) ctx[k] = v;
  };
  if (isServicePrincipal(principal)) {
    put('aws:PrincipalIsAWSService', 'true');
    put('aws:PrincipalServiceName', principal);
    return ctx;
  }
  const account = principalAccount(principal);
  const resource = principal.split(':').slice(5).join(':');
  // aws:PrincipalType and aws:username: the principal key table of
  // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#principaltable
  const type = resource === 'root' ? 'Account'
    : resource.startsWith('user/') ? 'User'
    : resource.startsWith('federated-user/') ? 'FederatedUser'
    : resource.startsWith('assumed-role/') || resource.startsWith('role/') ? 'AssumedRole'
    : undefined;
  put('aws:PrincipalType', type);
  if (type === 'User') put('aws:username', resource.split('/').pop());
  put('aws:PrincipalArn', principalArnFor(principal));
  put('aws:PrincipalAccount', account);
  put('kms:CallerAccount', account);
  put('aws:PrincipalIsAWSService', 'false');
  return ctx;
}

function asList(v) {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

function isFullAccessRcpStatement(s) {
  return (
    s && s.Effect === 'Allow' && s.Principal === '*' &&
    asList(s.Action).length === 1 && asList(s.Action)[0] === '*' &&
    asList(s.Resource).length === 1 && asList(s.Resource)[0] === '*' &&
    !s.Condition && !s.NotAction && !s.NotResource
  );
}

function translateRcpLevel(level, index) {
  let sawFullAccess = false;
  const policies = [];
  level.forEach((policy, p) => {
    const statements = asList(policy.Statement);
    const kept = [];
    for (const s of statements) {
      if (isFullAccessRcpStatement(s)) sawFullAccess = true;
      else kept.push(s);
    }
    if (kept.length > 0) {
      policies.push({ name: `rcps[${index}][${p}]`, policy: { ...policy, Statement: kept } });
    }
  });
  if (!sawFullAccess) {
    throw new Error(`unrepresentable: rcps[${index}] lacks RCPFullAWSAccess (AWS always attaches it)`);
  }
  return { orgIdentifier: `rcps[${index}]`, policies };
}

/**
 * Translate one keyfix simulate document into one or more iam-simulate simulations
 * (one per permission boundary when there are several).
 */
export function toSimulations(doc) {
  const req = doc.request || {};
  const resource = req.resource;
  let accountId = req.resource_account;
  if (!accountId && typeof resource === 'string' && resource.startsWith('arn:')) {
    accountId = resource.split(':')[4];
  }
  if (!accountId) throw new Error('request.resource_account is required for this resource');
  const given = req.context || {};
  const contextVariables = impliedContext(req.principal, given);
  const base = {
    request: {
      principal: req.principal,
      action: req.action,
      resource: { resource, accountId },
      contextVariables,
    },
    identityPolicies: asList(doc.identity_policies).map((policy, i) => ({
      name: `identity_policies[${i}]`,
      policy,
    })),
    serviceControlPolicies: doc.scps
      ? doc.scps.map((level, i) => ({
          orgIdentifier: `scps[${i}]`,
          policies: level.map((policy, p) => ({ name: `scps[${i}][${p}]`, policy })),
        }))
      : [],
    resourceControlPolicies: doc.rcps ? doc.rcps.map(translateRcpLevel) : [],
  };
  if (doc.resource_policy) base.resourcePolicy = doc.resource_policy;
  if (doc.session_policy) base.sessionPolicy = doc.session_policy;
  const boundaries = asList(doc.permission_boundaries);
  if (boundaries.length <= 1) {
    if (boundaries.length === 1) {
      base.permissionBoundaryPolicies = [{ name: 'permission_boundaries[0]', policy: boundaries[0] }];
    }
    return { simulations: [base], givenKeys: Object.keys(given) };
  }
  return {
    simulations: boundaries.map((policy, i) => ({
      ...base,
      permissionBoundaryPolicies: [{ name: `permission_boundaries[${i}]`, policy }],
    })),
    givenKeys: Object.keys(given),
  };
}

function describeError(errors) {
  if (!errors) return 'unknown error';
  const detail = { ...errors };
  delete detail.message;
  const extra = Object.keys(detail).length ? ' ' + JSON.stringify(detail) : '';
  return `${errors.message}${extra}`;
}

/** Evaluate one keyfix simulate document; never throws. */
export async function evaluate(doc) {
  const out = { decision: null, error: null, ignored_context_keys: [], unsupported: [], runs: 0 };
  try {
    if (asList(doc.grants).length > 0) out.unsupported.push('grants');
    const { simulations, givenKeys } = toSimulations(doc);
    const givenLower = new Set(givenKeys.map((k) => k.toLowerCase()));
    let worst = null;
    const ignored = new Set();
    for (const sim of simulations) {
      const res = await runSimulation(sim, {});
      out.runs += 1;
      if (res.resultType === 'error') {
        out.error = describeError(res.errors);
        return out;
      }
      const results = res.resultType === 'single' ? [res.result] : res.results;
      for (const r of results) {
        for (const k of r.ignoredContextKeys || []) if (givenLower.has(k.toLowerCase())) ignored.add(k);
      }
      if (worst === null || RANK[res.overallResult] > RANK[worst]) worst = res.overallResult;
    }
    out.decision = worst;
    out.ignored_context_keys = [...ignored].sort();
  } catch (e) {
    out.error = String(e && e.message ? e.message : e);
  }
  return out;
}

