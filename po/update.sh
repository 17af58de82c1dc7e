#!/usr/bin/env bash
# Refresh the message catalogs from the sources: po/pkio-agent.pot (the English msgids), then
# po/nl.po merged with it (new texts appear untranslated or fuzzy: translate them and remove
# the fuzzy marks) and po/en.po (English: every msgstr is its msgid). The test i18n_catalog
# fails while nl.po lacks a text of the sources or keeps a fuzzy one.
#   bash po/update.sh            (from anywhere; needs the Debian package gettext)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
bash po/xgettext.sh >po/pkio-agent.pot
if [[ -f po/nl.po ]]; then
    msgmerge --quiet --update --backup=none --no-wrap po/nl.po po/pkio-agent.pot
else
    msginit --no-translator --no-wrap --locale=nl_NL.UTF-8 -i po/pkio-agent.pot -o po/nl.po
fi
msgen --no-wrap po/pkio-agent.pot | sed 's/^"Language: \\n"$/"Language: en\\n"/' >po/en.po
msgfmt --check --statistics -o /dev/null po/nl.po
