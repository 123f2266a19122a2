#!/usr/bin/env python3
"""Build data/qa/facts.tsv: question/answer pairs of well-known facts for the down-scaling
study (closed-book, open-book and overriding QA), from two Debian packages:

  miscfiles     /usr/share/misc/countries.gz   (UN code : ISO2 : ISO3 : country : capital)
  dict-elements /usr/share/dictd/elements.dict.dz (Jay F. Kominek's elements database,
                public domain: name, symbol, atomic number)

Each row has an evidence sentence stating the fact and a counterfactual variant: the same
sentence with another entity of the same kind (another country's capital, another element's
symbol or number), chosen deterministically. Answers may list alternatives separated by '|'.
Usage: python3 tools/make_qa_facts.py > data/qa/facts.tsv
"""
import gzip
import re
import sys

COUNTRIES = "/usr/share/misc/countries.gz"
ELEMENTS = "/usr/share/dictd/elements.dict.dz"

# Common names for official country names (accepted answers; the first is used in questions).
COUNTRY_NAMES = {
    "Bolivia": ["Bolivia"],
    "Brunei Darussalam": ["Brunei", "Brunei Darussalam"],
    "Czech Republic": ["Czech Republic", "Czechia"],
    "Democratic People's Republic of Korea": ["North Korea", "Democratic People's Republic of Korea", "DPRK"],
    "Democratic Republic of the Congo": ["Democratic Republic of the Congo", "DR Congo", "DRC"],
    "Congo": ["Republic of the Congo", "Congo"],
    "Federated States of Micronesia": ["Micronesia", "Federated States of Micronesia"],
    "Holy See": ["Vatican City", "Holy See", "Vatican"],
    "Lao People's Democratic Republic": ["Laos", "Lao People's Democratic Republic"],
    "Republic of Korea": ["South Korea", "Republic of Korea", "Korea"],
    "Republic of Moldova": ["Moldova", "Republic of Moldova"],
    "Russian Federation": ["Russia", "Russian Federation"],
    "Syrian Arab Republic": ["Syria", "Syrian Arab Republic"],
    "Taiwan, Province of China": ["Taiwan"],
    "The former Yugoslav Republic of Macedonia": ["North Macedonia", "Macedonia"],
    "United Kingdom of Great Britain and Northern Ireland": ["United Kingdom", "UK", "Britain", "Great Britain"],
    "United Republic of Tanzania": ["Tanzania", "United Republic of Tanzania"],
    "United States of America": ["United States", "United States of America", "USA", "US", "America"],
    "Viet Nam": ["Vietnam", "Viet Nam"],
    "Iran": ["Iran"],
}
# Territories whose "capital" is not a well-known fact or not a city.
SKIP_COUNTRIES = {"Antarctica", "United States Minor Outlying Islands", "Occupied Palestinian Territory",
                  "Hong Kong Special Administrative Region of China", "Macau Special Administrative Region of China"}


def clean_capitals(field):
    """'Amsterdam (official), The Hague (seat of government)' -> ['Amsterdam', 'The Hague']"""
    if field == "Washington, DC":
        return ["Washington, D.C.", "Washington", "Washington DC"]
    names = [part.strip() for part in re.sub(r"\s*\([^)]*\)", "", field).split(",")]
    return [n for n in names if n]


def countries():
    rows = []
    for line in gzip.open(COUNTRIES, "rt", encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        code, iso2, iso3, name, capital = line.rstrip("\n").split(":", 4)
        if not capital or name in SKIP_COUNTRIES:
            continue
        rows.append((COUNTRY_NAMES.get(name, [name]), clean_capitals(capital)))
    return rows


def elements():
    text = gzip.open(ELEMENTS, "rb").read().decode("latin-1")
    out, seen = [], set()
    for m in re.finditer(r"^([a-z]+)\nSymbol: (\w+)\nAtomic number: (\d+)", text, re.M):
        name, symbol, number = m.group(1), m.group(2), int(m.group(3))
        if number in seen:  # aluminum/aluminium, cesium/caesium, old names: keep the first
            continue
        seen.add(number)
        out.append((name.capitalize(), symbol, number))
    return sorted(out, key=lambda e: e[2])


def row(id_, relation, question, answers, evidence, cf_answer, cf_evidence, source):
    evidence, cf_evidence = evidence.replace("..", "."), cf_evidence.replace("..", ".")
    cells = [id_, relation, question, "|".join(answers), evidence, cf_answer, cf_evidence, source]
    for c in cells:
        assert "\t" not in c and "\n" not in c, c
    return "\t".join(cells)


def main():
    out = ["# inferkit QA facts: built by tools/make_qa_facts.py from Debian miscfiles (countries.gz) and "
           "dict-elements (elements.dict.dz)",
           "# id\trelation\tquestion\tanswer(s, |-separated)\tevidence\tcounterfactual answer\t"
           "counterfactual evidence\tsource"]
    cs = countries()
    src_c = "miscfiles:/usr/share/misc/countries.gz"
    n = len(cs)
    for i, (names, caps) in enumerate(cs):
        country, capital = names[0], caps[0]
        cf = cs[(i + 37) % n][1][0]
        out.append(row(f"capital-{i:03d}", "capital_of", f"What is the capital of {country}?", caps,
                       f"The capital of {country} is {capital}.", cf, f"The capital of {country} is {cf}.", src_c))
    for i, (names, caps) in enumerate(cs):
        country, capital = names[0], caps[0]
        cf = cs[(i + 53) % n][0][0]
        if capital == country:  # city-states: the question would give the answer away
            continue
        out.append(row(f"country-{i:03d}", "country_of_capital", f"{capital} is the capital of which country?",
                       names, f"{capital} is the capital of {country}.", cf, f"{capital} is the capital of {cf}.",
                       src_c))
    es = elements()
    src_e = "dict-elements:/usr/share/dictd/elements.dict.dz"
    m = len(es)
    for i, (name, symbol, number) in enumerate(es):
        cf = es[(i + 29) % m]
        out.append(row(f"symbol-{number:03d}", "element_symbol", f"What is the chemical symbol of {name}?", [symbol],
                       f"The chemical symbol of {name} is {symbol}.", cf[1],
                       f"The chemical symbol of {name} is {cf[1]}.", src_e))
        out.append(row(f"element-{number:03d}", "element_of_symbol",
                       f"Which chemical element has the symbol {symbol}?", [name],
                       f"{symbol} is the chemical symbol of {name}.", cf[0],
                       f"{symbol} is the chemical symbol of {cf[0]}.", src_e))
        out.append(row(f"number-{number:03d}", "atomic_number", f"What is the atomic number of {name}?",
                       [str(number)], f"The atomic number of {name} is {number}.", str(cf[2]),
                       f"The atomic number of {name} is {cf[2]}.", src_e))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
