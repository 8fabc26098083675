#!/usr/bin/env bash
# The README walkthrough against `npm start`'s federation: a resident moves from Tawaramoto (293610)
# to Toda (112241), gives consent at Toda's counter, and Toda fetches the prior vaccination records.
# Needs curl and node (for JSON). The My Number is read "from the resident's card": the demo
# generator is deterministic, so scripts/demo-my-number.ts makes the card again from the person
# (name, kana, birth date, sex). Any current Tawaramoto resident whose card is known will do: one
# seeded there, or one who moved in earlier (by this script or `npm run simulate`), so the script
# runs any number of times, before or after the simulator, on the same data.
# Another federation (a test one): TAWARAMOTO and TODA (staff URLs), PASSWORD, RESIDENTS (residents
# seeded per municipality, for the cards).
set -euo pipefail
TAWARAMOTO=${TAWARAMOTO:-http://127.0.0.1:3001}
TODA=${TODA:-http://127.0.0.1:3003}
PASSWORD=${PASSWORD:-hikitsugi-demo-2026}
RESIDENTS=${RESIDENTS:-400}
cd "$(dirname "$0")/.."

json() { node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const v=JSON.parse(s);console.log($1)})"; }
login() { curl -sf "$1/auth/login" -H 'content-type: application/json' -d "{\"username\":\"$2\",\"password\":\"$PASSWORD\"}" | json 'v.token'; }
key() { node -e "console.log(crypto.randomUUID())"; }

T_CLERK=$(login "$TAWARAMOTO" clerk1)
D_CLERK=$(login "$TODA" clerk1)

echo "1. Tawaramoto: pick a current resident with a registered code and some vaccination records"
RESIDENT=""
card() { node --import tsx scripts/demo-my-number.ts --residents "$RESIDENTS" "$@"; }
PAGE=1
while [ -z "$RESIDENT" ]; do
  LIST=$(curl -sf "$TAWARAMOTO/residents?status=resident&pageSize=100&page=$PAGE" -H "authorization: Bearer $T_CLERK")
  for CANDIDATE in $(echo "$LIST" | json 'JSON.stringify({ items: v.items.filter((r) => r.codeStatus === "issued") })' | card --known); do
    COUNT=$(curl -sf "$TAWARAMOTO/residents/$CANDIDATE/vaccinations" -H "authorization: Bearer $T_CLERK" | json 'v.records.length')
    if [ "$COUNT" -gt 0 ]; then RESIDENT=$CANDIDATE; break; fi
  done
  [ "$(echo "$LIST" | json "v.items.length < 100 || $PAGE * 100 >= v.total")" = true ] && break
  PAGE=$((PAGE + 1))
done
[ -n "$RESIDENT" ] || { echo "no resident with records, a code and a known card yet; wait a few seconds and run again"; exit 1; }
MY_NUMBER=$(curl -sf "$TAWARAMOTO/residents/$RESIDENT" -H "authorization: Bearer $T_CLERK" | card)
curl -sf "$TAWARAMOTO/residents/$RESIDENT" -H "authorization: Bearer $T_CLERK" | json '`   ${v.name} (${v.kana}), born ${v.birthDate}, My Number ${v.myNumberMasked}${v.previousMunicipality ? `, moved in from ${v.previousMunicipality}` : ""}`'
curl -sf "$TAWARAMOTO/residents/$RESIDENT/vaccinations" -H "authorization: Bearer $T_CLERK" | json '`   ${v.records.length} vaccination records at Tawaramoto`'

echo "2. Tawaramoto: move-out to Toda; Tawaramoto signs the move-out certificate"
CERT=$(curl -sf "$TAWARAMOTO/residents/$RESIDENT/move-out" -H "authorization: Bearer $T_CLERK" -H 'content-type: application/json' \
  -d "{\"moveOutDate\":\"$(date -u +%F)\",\"destination\":\"112241\",\"destinationAddress\":\"埼玉県戸田市上戸田1-1-1\"}" | json 'v.certificate')
echo "   certificate: ${CERT:0:40}…"

echo "3. Toda: move-in from the certificate, My Number from the card, consent given at the counter"
EXPIRES=$(node -e "console.log(new Date(Date.now()+90*864e5).toISOString())")
NEW=$(curl -sf "$TODA/move-ins" -H "authorization: Bearer $D_CLERK" -H 'content-type: application/json' \
  -d "{\"certificate\":\"$CERT\",\"myNumber\":\"$MY_NUMBER\",\"address\":\"埼玉県戸田市上戸田1-1-1\",\"consent\":{\"purpose\":\"next-dose-scheduling\",\"expiresAt\":\"$EXPIRES\",\"method\":\"written\"}}" | json 'v.resident.addresseeNumber')
echo "   new addressee number at Toda: $NEW"

echo "4. Toda: wait for the resident's code (registered with the issuer in the background)"
for _ in $(seq 1 30); do
  STATUS=$(curl -sf "$TODA/residents/$NEW" -H "authorization: Bearer $D_CLERK" | json 'v.codeStatus')
  [ "$STATUS" = issued ] && break; sleep 1
done
echo "   code status: $STATUS"

echo "5. Toda: query Tawaramoto for the prior records, through the gateway"
curl -sf "$TODA/exchange/queries" -H "authorization: Bearer $D_CLERK" -H 'content-type: application/json' \
  -d "{\"purpose\":\"next-dose-scheduling\",\"subjects\":[{\"addresseeNumber\":\"$NEW\",\"source\":\"293610\"}]}" | json 'JSON.stringify(v.results)'
curl -sf "$TODA/residents/$NEW/vaccinations" -H "authorization: Bearer $D_CLERK" | json '`   Toda now holds ${v.records.length} records, imported with provenance from ${[...new Set(v.records.map(r=>r.provenance?.sourceMunicipality))].join(",")}`'
