"""Seeded generators of synthetic customers, their history, support tickets and sales leads, for
the demo, notebooks and benchmarks.

Everything comes from one `random.Random(seed)` and fixed times, ids included, so the same seed
gives the same data on every machine and every run. Tickets come as `TicketFlow`s: the ticket as
it arrives and its timed steps, for a simulation to play (the demo plays them through the SLA
timers and the router). Leads come as `LeadFlow`s the same way: the lead as it arrives, what the
prospect does (for scoring) and the timed steps of the lead and of the deal it may become.
"""

from __future__ import annotations

import enum
import math
import random
import unicodedata
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs
import phonenumbers

from crmcore.customers import (
    Address,
    Contact,
    Customer,
    CustomerKind,
    Direction,
    EmailAddress,
    Interaction,
    InteractionChannel,
    Order,
    OrderLine,
    OrderStatus,
    PhoneNumber,
    SalesChannel,
    phone_region,
)
from crmcore.ids import ulid
from crmcore.money import Money, minor_units
from crmcore.pipeline.lead import Lead
from crmcore.pipeline.quote import QuoteLine
from crmcore.pipeline.scoring import Activity
from crmcore.service.calendar import BusinessCalendar, HolidayRule, Weekday, WorkingHours
from crmcore.service.ticket import (
    AuthorRole,
    SatisfactionSurvey,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketType,
)

__all__ = [
    "COUNTRIES",
    "Country",
    "DEMO_NOW",
    "History",
    "INDUSTRIES",
    "LeadFlow",
    "LeadStep",
    "LeadStepKind",
    "PRODUCTS",
    "SALES_HOURS",
    "SALES_REPS",
    "SUPPORT_HOURS",
    "StepKind",
    "TIERS",
    "TicketFlow",
    "TicketStep",
    "generate_customers",
    "generate_history",
    "generate_leads",
    "generate_tickets",
    "seed_duplicates",
    "seeded_id",
]

DEMO_NOW = datetime(2025, 6, 30, 9, 0, tzinfo=UTC)
"""The demo's fixed "now": every generated date lies in the three years before it."""

SALES_REPS = ("rep-amara", "rep-bjorn", "rep-chloe", "rep-diego", "rep-emi", "rep-farid")
TIERS = ("bronze", "silver", "gold", "platinum")
INDUSTRIES = (
    "software",
    "retail",
    "manufacturing",
    "healthcare",
    "finance",
    "logistics",
    "education",
    "hospitality",
)
_TIER_WEIGHTS = (50, 30, 15, 5)
_SOURCES = ("web", "referral", "event", "partner", "outbound")


def _words(text: str) -> tuple[str, ...]:
    """``"a, b c"`` -> ``("a", "b c")``: keeps the country tables below short."""
    return tuple(text.split(", "))


@attrs.frozen
class Country:
    """What the generator needs to make plausible customers in one country."""

    code: str
    currency: str
    weight: int
    """Relative share of the customers."""
    credit_scale: int
    """Local units per euro, roughly, so credit limits look local."""
    calling_code: str
    phone_digits: tuple[int, ...]
    """Groups of digits after the calling code, e.g. (3, 7) for ``+1 555 0123456``."""
    cities: tuple[tuple[str, str, str], ...]
    """(city, region, postal code prefix)."""
    streets: tuple[str, ...]
    street_first: bool
    """``Main Street 12`` (number last) or ``12 Main Street``."""
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    company_words: tuple[str, ...]
    company_suffixes: tuple[str, ...]
    mail_domains: tuple[str, ...]
    tld: str


COUNTRIES: tuple[Country, ...] = (
    Country(
        code="US",
        currency="USD",
        weight=25,
        credit_scale=1,
        calling_code="+1",
        phone_digits=(3, 3, 4),
        cities=(
            ("New York", "NY", "100"),
            ("San Francisco", "CA", "941"),
            ("Chicago", "IL", "606"),
            ("Austin", "TX", "787"),
            ("Seattle", "WA", "981"),
            ("Boston", "MA", "021"),
        ),
        streets=_words("Main Street, Oak Avenue, Market Street, Maple Drive, Cedar Lane, Pine Road"),
        street_first=False,
        first_names=_words(
            "James, Mary, Michael, Patricia, Robert, Jennifer, David, Linda, Emily, Daniel, "
            "Olivia, Tyler, Ashley, Marcus, Jasmine, Kevin"
        ),
        last_names=_words(
            "Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, "
            "Wilson, Anderson, Taylor, Thomas, Moore, Jackson, Lee"
        ),
        company_words=_words("Summit, Blue Ridge, Evergreen, Keystone, Pioneer, Liberty, Redwood"),
        company_suffixes=_words("Inc., LLC, Corp., Group"),
        mail_domains=_words("gmail.com, yahoo.com, outlook.com, icloud.com"),
        tld="com",
    ),
    Country(
        code="DE",
        currency="EUR",
        weight=18,
        credit_scale=1,
        calling_code="+49",
        phone_digits=(3, 7),
        cities=(
            ("Berlin", "Berlin", "10"),
            ("München", "Bayern", "80"),
            ("Hamburg", "Hamburg", "20"),
            ("Köln", "Nordrhein-Westfalen", "50"),
            ("Frankfurt am Main", "Hessen", "60"),
            ("Leipzig", "Sachsen", "04"),
        ),
        streets=_words("Hauptstraße, Bahnhofstraße, Gartenweg, Lindenallee, Schillerstraße, Am Markt"),
        street_first=True,
        first_names=_words(
            "Lukas, Anna, Jonas, Lea, Felix, Hannah, Maximilian, Sophie, Jürgen, Sabine, "
            "Moritz, Katrin, Tobias, Jana, Stefan, Mia"
        ),
        last_names=_words(
            "Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, "
            "Hoffmann, Schäfer, Koch, Bauer, Richter, Klein, Wolf"
        ),
        company_words=_words("Nordlicht, Alpen, Rhein, Brückner, Hanse, Sonnenberg, Weißdorn"),
        company_suffixes=_words("GmbH, AG, KG, GmbH & Co. KG"),
        mail_domains=_words("gmx.de, web.de, t-online.de, posteo.de"),
        tld="de",
    ),
    Country(
        code="GB",
        currency="GBP",
        weight=14,
        credit_scale=1,
        calling_code="+44",
        phone_digits=(2, 4, 4),
        cities=(
            ("London", "Greater London", "EC"),
            ("Manchester", "Greater Manchester", "M"),
            ("Edinburgh", "Scotland", "EH"),
            ("Bristol", "England", "BS"),
            ("Leeds", "West Yorkshire", "LS"),
        ),
        streets=_words("High Street, Station Road, Church Lane, Victoria Road, Park Road, Mill Lane"),
        street_first=False,
        first_names=_words(
            "Oliver, Amelia, George, Isla, Harry, Ava, Jack, Freya, Charlotte, William, "
            "Poppy, Alfie, Eleanor, Rhys, Imogen, Callum"
        ),
        last_names=_words(
            "Smith, Jones, Taylor, Brown, Evans, Wilson, Thomas, Roberts, Walker, Wright, "
            "Hughes, Edwards, Green, Hall, Wood, Clarke"
        ),
        company_words=_words("Thames, Albion, Highgate, Kingsley, Pennine, Westbrook, Harbour"),
        company_suffixes=_words("Ltd, PLC, & Sons Ltd, Partners LLP"),
        mail_domains=_words("gmail.com, btinternet.com, outlook.com, yahoo.co.uk"),
        tld="co.uk",
    ),
    Country(
        code="FR",
        currency="EUR",
        weight=12,
        credit_scale=1,
        calling_code="+33",
        phone_digits=(1, 2, 2, 2, 2),
        cities=(
            ("Paris", "Île-de-France", "75"),
            ("Lyon", "Auvergne-Rhône-Alpes", "69"),
            ("Marseille", "Provence-Alpes-Côte d'Azur", "13"),
            ("Toulouse", "Occitanie", "31"),
            ("Bordeaux", "Nouvelle-Aquitaine", "33"),
            ("Nantes", "Pays de la Loire", "44"),
        ),
        streets=_words(
            "rue de la Paix, avenue Victor Hugo, rue du Moulin, boulevard Voltaire, rue des Lilas"
        ),
        street_first=False,
        first_names=_words(
            "Gabriel, Léa, Louis, Chloé, Hugo, Manon, Jules, Camille, Étienne, Inès, Théo, "
            "Zoé, Mathis, Céline, Antoine, Élodie"
        ),
        last_names=_words(
            "Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau, "
            "Simon, Laurent, Lefèvre, Michel, Garnier, Faure"
        ),
        company_words=_words("Lumière, Horizon, Atelier Bleu, Provence, Cèdre, Boréal, Rivage"),
        company_suffixes=_words("SAS, SARL, SA"),
        mail_domains=_words("orange.fr, free.fr, gmail.com, laposte.net"),
        tld="fr",
    ),
    Country(
        code="NL",
        currency="EUR",
        weight=8,
        credit_scale=1,
        calling_code="+31",
        phone_digits=(2, 3, 4),
        cities=(
            ("Amsterdam", "Noord-Holland", "10"),
            ("Rotterdam", "Zuid-Holland", "30"),
            ("Utrecht", "Utrecht", "35"),
            ("Eindhoven", "Noord-Brabant", "56"),
            ("Groningen", "Groningen", "97"),
        ),
        streets=_words("Kerkstraat, Dorpsstraat, Molenweg, Prinsengracht, Stationsplein"),
        street_first=True,
        first_names=_words(
            "Daan, Emma, Sem, Julia, Lucas, Sanne, Bram, Fleur, Thijs, Anouk, Ruben, Lotte, "
            "Jeroen, Femke, Joris, Noor"
        ),
        last_names=_words(
            "de Jong, Jansen, de Vries, van den Berg, van Dijk, Bakker, Visser, Smit, "
            "Meijer, de Boer, Mulder, Bos, Vos, Peters, Hendriks, Dekker"
        ),
        company_words=_words("Tulp, Polder, Oranje, Delta, Windmolen, Grachten, Zeeland"),
        company_suffixes=_words("B.V., N.V."),
        mail_domains=_words("ziggo.nl, kpnmail.nl, gmail.com, hotmail.nl"),
        tld="nl",
    ),
    Country(
        code="SE",
        currency="SEK",
        weight=6,
        credit_scale=11,
        calling_code="+46",
        phone_digits=(2, 3, 2, 2),
        cities=(
            ("Stockholm", "Stockholms län", "11"),
            ("Göteborg", "Västra Götaland", "41"),
            ("Malmö", "Skåne", "21"),
            ("Uppsala", "Uppsala län", "75"),
        ),
        streets=_words("Storgatan, Drottninggatan, Kungsgatan, Skolgatan, Björkvägen"),
        street_first=True,
        first_names=_words(
            "Erik, Elsa, Lars, Astrid, Nils, Ingrid, Oskar, Maja, Björn, Åsa, Henrik, "
            "Sigrid, Axel, Linnéa, Gustav, Karin"
        ),
        last_names=_words(
            "Andersson, Johansson, Karlsson, Nilsson, Eriksson, Larsson, Olsson, Persson, "
            "Svensson, Gustafsson, Lindqvist, Berg, Lund, Holm, Ström, Ek"
        ),
        company_words=_words("Nordic, Fjäll, Skog, Ljus, Havsbris, Vinter, Granit"),
        company_suffixes=_words("AB"),
        mail_domains=_words("telia.com, gmail.com, bredband.net, outlook.com"),
        tld="se",
    ),
    Country(
        code="JP",
        currency="JPY",
        weight=8,
        credit_scale=160,
        calling_code="+81",
        phone_digits=(2, 4, 4),
        cities=(
            ("Tokyo", "Tokyo", "100"),
            ("Osaka", "Osaka", "530"),
            ("Yokohama", "Kanagawa", "220"),
            ("Kyoto", "Kyoto", "600"),
            ("Fukuoka", "Fukuoka", "810"),
            ("Sapporo", "Hokkaido", "060"),
        ),
        streets=_words("Chuo-dori, Sakura-dori, Ginza, Shinjuku, Umeda, Tenjin"),
        street_first=False,
        first_names=_words(
            "Haruto, Yui, Sota, Hina, Ren, Aoi, Yuto, Sakura, Kenji, Yuki, Takumi, Mei, "
            "Hiroshi, Akiko, Daiki, Naomi"
        ),
        last_names=_words(
            "Sato, Suzuki, Takahashi, Tanaka, Watanabe, Ito, Yamamoto, Nakamura, Kobayashi, "
            "Kato, Yoshida, Yamada, Sasaki, Matsumoto, Inoue, Kimura"
        ),
        company_words=_words("Fuji, Sakura, Tsubasa, Hikari, Midori, Kaze, Yamato"),
        company_suffixes=("K.K.", "Co., Ltd."),
        mail_domains=_words("gmail.com, yahoo.co.jp, docomo.ne.jp, outlook.jp"),
        tld="co.jp",
    ),
    Country(
        code="BR",
        currency="BRL",
        weight=9,
        credit_scale=6,
        calling_code="+55",
        phone_digits=(2, 5, 4),
        cities=(
            ("São Paulo", "SP", "01"),
            ("Rio de Janeiro", "RJ", "20"),
            ("Belo Horizonte", "MG", "30"),
            ("Curitiba", "PR", "80"),
            ("Porto Alegre", "RS", "90"),
            ("Recife", "PE", "50"),
        ),
        streets=_words("Rua das Flores, Avenida Paulista, Rua Augusta, Avenida Brasil, Rua do Comércio"),
        street_first=True,
        first_names=_words(
            "Miguel, Alice, Arthur, Helena, Heitor, Laura, Davi, Valentina, João, Ana, "
            "Pedro, Beatriz, Lucas, Mariana, Rafael, Luíza"
        ),
        last_names=_words(
            "Silva, Santos, Oliveira, Souza, Rodrigues, Ferreira, Alves, Pereira, Lima, "
            "Gomes, Costa, Ribeiro, Martins, Carvalho, Araújo, Barbosa"
        ),
        company_words=_words("Horizonte, Ipê, Atlântico, Cerrado, Aurora, Tropical, Estrela"),
        company_suffixes=_words("Ltda., S.A., ME"),
        mail_domains=_words("gmail.com, uol.com.br, hotmail.com, bol.com.br"),
        tld="com.br",
    ),
)

_COMPANY_TRADES = {
    "software": ("Software", "Systems", "Digital", "Labs"),
    "retail": ("Retail", "Stores", "Market", "Trading"),
    "manufacturing": ("Manufacturing", "Industries", "Works", "Engineering"),
    "healthcare": ("Health", "Medical", "Care", "Pharma"),
    "finance": ("Capital", "Finance", "Advisors", "Invest"),
    "logistics": ("Logistics", "Freight", "Transport", "Shipping"),
    "education": ("Academy", "Learning", "Education", "Institute"),
    "hospitality": ("Hotels", "Hospitality", "Dining", "Travel"),
}
_SPAN = timedelta(days=3 * 365)


def seeded_id(at: datetime, rng: random.Random) -> str:
    """A ULID for time ``at`` whose random part comes from ``rng``: reproducible, sortable by time."""
    return ulid(int(at.timestamp() * 1000), rng.getrandbits(80))


def _ascii(text: str) -> str:
    """Lower-case ASCII for email addresses and domains: ``Müller`` -> ``mueller``."""
    text = text.lower()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("å", "aa"), ("ø", "oe")):
        text = text.replace(src, dst)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in ".-"))


def _slug(text: str) -> str:
    return "-".join(part for part in (_ascii(w) for w in text.split()) if part)


def _phone(country: Country, rng: random.Random) -> str:
    groups = ["".join(str(rng.randrange(10)) for _ in range(n)) for n in country.phone_digits]
    groups[0] = str(rng.randrange(1, 10)) + groups[0][1:]  # no leading zero after the calling code
    return " ".join([country.calling_code, *groups])


def _address(country: Country, rng: random.Random) -> Address:
    city, region, prefix = rng.choice(country.cities)
    street, number = rng.choice(country.streets), rng.randrange(1, 200)
    width = 5 if prefix.isdigit() and country.code != "JP" else 0
    if country.code == "GB":
        letters = "".join(rng.choices("ABDEFGHJLNPQRSTUWXYZ", k=2))
        postal = f"{prefix}{rng.randrange(1, 20)} {rng.randrange(1, 10)}{letters}"
    elif country.code == "JP":
        postal = f"{prefix}-{rng.randrange(10000):04d}"
    elif country.code == "BR":
        postal = f"{prefix}{rng.randrange(1000):03d}-{rng.randrange(1000):03d}"
    elif country.code == "NL":
        letters = "".join(rng.choices("ABCDEGHJKLMNPRSTVWXZ", k=2))
        postal = f"{prefix}{rng.randrange(10, 100)} {letters}"
    elif country.code == "SE":
        postal = f"{prefix}{rng.randrange(10)} {rng.randrange(100):02d}"
    else:
        postal = prefix + "".join(str(rng.randrange(10)) for _ in range(width - len(prefix)))
    line1 = f"{street} {number}" if country.street_first else f"{number} {street}"
    return Address(
        country=country.code, line1=line1, city=city, region=region, postal_code=postal, primary=True
    )


def _credit_limit(country: Country, kind: CustomerKind, tier: str, rng: random.Random) -> Money | None:
    if kind is CustomerKind.PERSON and rng.random() < 0.6:
        return None
    base = {"bronze": 2_000, "silver": 8_000, "gold": 25_000, "platinum": 80_000}[tier]
    if kind is CustomerKind.PERSON:
        base //= 5
    amount = Decimal(base * country.credit_scale) * Decimal(rng.randrange(50, 201)) / 100
    step = Decimal(500 * country.credit_scale)  # round figures, as a credit desk would set them
    amount = max(step, (amount / step).to_integral_value() * step)
    return Money(amount.quantize(Decimal(1).scaleb(-minor_units(country.currency))), country.currency)


def _created_at(rng: random.Random, now: datetime) -> datetime:
    # A growing business: more customers joined recently (density rises linearly with time).
    fraction = rng.random() ** 0.6
    at: datetime = now - _SPAN + _SPAN * fraction
    return at.replace(microsecond=0)


def _person(
    country: Country, rng: random.Random, taken: set[str]
) -> tuple[str, tuple[EmailAddress, ...], dict[str, object]]:
    first, last = rng.choice(country.first_names), rng.choice(country.last_names)
    local = rng.choice(
        (
            f"{_ascii(first)}.{_slug(last).replace('-', '')}",
            f"{_ascii(first)[0]}{_slug(last).replace('-', '')}",
        )
    )
    if rng.random() < 0.3:
        local += str(rng.randrange(1, 100))
    domain = rng.choice(country.mail_domains)
    while f"{local}@{domain}" in taken:  # a mailbox has one owner: the next free number
        local += str(rng.randrange(10))
    taken.add(f"{local}@{domain}")
    emails = (EmailAddress(address=f"{local}@{domain}", label="home", primary=True),)
    return f"{first} {last}", emails, {}


def _company(
    country: Country, rng: random.Random, taken: set[str]
) -> tuple[str, tuple[EmailAddress, ...], dict[str, object]]:
    industry = rng.choice(INDUSTRIES)
    for attempt in range(50):  # a firm's name (and so its domain) is its own
        core = f"{rng.choice(country.company_words)} {rng.choice(_COMPANY_TRADES[industry])}"
        if attempt >= 10:
            core = f"{core} {rng.choice(country.cities)[0]}"
        domain = f"{_slug(core)}.{country.tld}"
        if domain not in taken:
            break
    taken.add(domain)
    name = f"{core} {rng.choice(country.company_suffixes)}"
    mailbox = rng.choice(("info", "sales", "contact", "office", "billing"))
    emails = (EmailAddress(address=f"{mailbox}@{domain}", label="work", primary=True),)
    custom: dict[str, object] = {
        "industry": industry,
        "employees": rng.choice((8, 25, 60, 140, 400, 1200, 5000)),
    }
    return name, emails, custom


def generate_customers(count: int, *, seed: int = 42, now: datetime = DEMO_NOW) -> Iterator[Customer]:
    """``count`` plausible customers, in creation order, the same ones for the same seed and ``now``.

    People and companies in eight countries with matching cities, phones and currencies; emails
    derived from names; tags (vip, newsletter, churn-risk, partner, beta); an owner from
    `SALES_REPS` for most; custom fields ``tier``, ``source``, ``nps`` (when surveyed) and, for
    companies, ``industry`` and ``employees``; ``created_at`` within three years before ``now``.
    """
    rng = random.Random(seed)
    weights = [c.weight for c in COUNTRIES]
    stamps = sorted(_created_at(rng, now) for _ in range(count))
    taken: set[str] = set()
    for created_at in stamps:
        country = rng.choices(COUNTRIES, weights)[0]
        kind = CustomerKind.COMPANY if rng.random() < 0.3 else CustomerKind.PERSON
        name, emails, custom = (_company if kind is CustomerKind.COMPANY else _person)(country, rng, taken)
        tier = rng.choices(TIERS, _TIER_WEIGHTS)[0]
        custom["tier"] = tier
        custom["source"] = rng.choice(_SOURCES)
        nps: int | None = None
        if rng.random() < 0.6:  # not everyone answers the survey
            nps = custom["nps"] = rng.choices(range(11), (2, 1, 1, 2, 3, 5, 7, 10, 16, 14, 9))[0]
        tags = []
        if (tier in ("gold", "platinum") and rng.random() < 0.35) or rng.random() < 0.02:
            tags.append("vip")
        if rng.random() < 0.45:
            tags.append("newsletter")
        detractor = nps is not None and nps <= 6
        if rng.random() < (0.15 if detractor else 0.04):
            tags.append("churn-risk")
        if kind is CustomerKind.COMPANY and rng.random() < 0.12:
            tags.append("partner")
        if rng.random() < 0.03:
            tags.append("beta")
        phones = (
            PhoneNumber(
                number=_phone(country, rng), label="mobile" if kind is CustomerKind.PERSON else "work"
            ),
        )
        birthday = None
        if kind is CustomerKind.PERSON and rng.random() < 0.4:
            birthday = date(rng.randrange(1950, 2005), rng.randrange(1, 13), rng.randrange(1, 29))
        age = now - created_at
        updated_at = created_at + age * rng.random() ** 2
        yield Customer(
            id=seeded_id(created_at, rng),
            name=name,
            kind=kind,
            emails=emails,
            phones=phones,
            addresses=(_address(country, rng),),
            tags=tuple(tags),
            owner=None if rng.random() < 0.12 else rng.choice(SALES_REPS),
            currency=country.currency,
            credit_limit=_credit_limit(country, kind, tier, rng),
            birthday=birthday,
            custom=custom,
            created_at=created_at,
            updated_at=updated_at.replace(microsecond=0),
        )


PRODUCTS: tuple[tuple[str, str, int], ...] = (
    ("SKU-STARTER", "Starter plan (month)", 29),
    ("SKU-TEAM", "Team plan (month)", 99),
    ("SKU-BUSINESS", "Business plan (month)", 299),
    ("SKU-SEATS", "Extra seat", 12),
    ("SKU-ONBOARD", "Onboarding package", 450),
    ("SKU-TRAIN", "Training day", 900),
    ("SKU-SUPPORT", "Premium support (year)", 1200),
    ("SKU-API", "API call pack", 49),
    ("SKU-STORAGE", "Storage add-on (100 GB)", 19),
    ("SKU-AUDIT", "Security audit", 2500),
)
"""(sku, product, price in euros): the demo shop's catalogue; prices scale to local currency."""

_COUNTRY_BY_CODE = {c.code: c for c in COUNTRIES}
_ROLES = ("decision maker", "billing", "technical", "champion", "procurement")
_TITLES = ("CEO", "CFO", "Head of IT", "Office Manager", "Buyer", "Operations Lead", "Developer")
_SUBJECTS = {
    InteractionChannel.CALL: ("Intro call", "Renewal call", "Follow-up call", "Support call"),
    InteractionChannel.EMAIL: ("Quote sent", "Newsletter reply", "Invoice question", "Product update"),
    InteractionChannel.MEETING: ("Quarterly review", "Demo meeting", "Onsite workshop"),
    InteractionChannel.CHAT: ("Chat: pricing", "Chat: login help", "Chat: feature question"),
    InteractionChannel.SMS: ("Delivery notice", "Appointment reminder"),
    InteractionChannel.SOCIAL: ("Mentioned us on LinkedIn", "Replied to a post"),
    InteractionChannel.WEB_VISIT: ("Visited pricing page", "Visited docs", "Downloaded whitepaper"),
    InteractionChannel.IN_STORE: ("Store visit", "Event booth visit"),
}
_CHANNEL_WEIGHTS = (20, 30, 8, 12, 4, 5, 18, 3)
_OUTCOMES = ("", "interested", "no answer", "meeting booked", "resolved", "not now")


@attrs.frozen
class History:
    """What happened with the generated customers: contacts, interactions and orders."""

    contacts: tuple[Contact, ...]
    interactions: tuple[Interaction, ...]
    orders: tuple[Order, ...]


def _local_price(euros: int, country: Country) -> Money:
    """A catalogue price in local currency, charm-priced (99 -> 98.99) where cents exist."""
    amount = Decimal(euros * country.credit_scale)
    if minor_units(country.currency):
        amount -= Decimal("0.01")
    return Money(amount, country.currency)


def _times(rng: random.Random, start: datetime, end: datetime, per_year: float) -> list[datetime]:
    """Arrival times of a Poisson process with ``per_year`` events a year between two instants."""
    out: list[datetime] = []
    at = start
    while per_year > 0:
        at += timedelta(days=rng.expovariate(per_year / 365.0))
        if at >= end:
            break
        out.append(at.replace(microsecond=0))
    return out


def generate_history(customers: list[Customer], *, seed: int = 42, now: datetime = DEMO_NOW) -> History:
    """Contacts, interactions and orders for ``customers``, reproducible for the same seed.

    Each customer buys at their own rate (gamma-distributed across customers) until they drop
    out, as in the BG/NBD model: some buy once, some steadily, some stop. Companies get one to
    four contacts; everyone gets touches on several channels. Order ids are time-ordered ULIDs.
    """
    rng = random.Random(f"history-{seed}")
    contacts: list[Contact] = []
    interactions: list[Interaction] = []
    orders: list[Order] = []
    channels = list(InteractionChannel)
    for customer in customers:
        country = _COUNTRY_BY_CODE.get(customer.country or "", COUNTRIES[0])
        joined = customer.created_at or now - _SPAN
        company = customer.kind is CustomerKind.COMPANY
        if company:
            for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
                first, last = rng.choice(country.first_names), rng.choice(country.last_names)
                domain = customer.primary_email.split("@")[1] if customer.primary_email else "example.com"
                contacts.append(
                    Contact(
                        id=seeded_id(joined, rng),
                        customer_id=customer.id,
                        name=f"{first} {last}",
                        title=rng.choice(_TITLES),
                        roles=rng.sample(_ROLES, rng.choice((0, 1, 1, 2))),
                        emails=[
                            EmailAddress(address=f"{_ascii(first)}.{_slug(last).replace('-', '')}@{domain}")
                        ],
                        owner=customer.owner,
                        created_at=joined,
                        updated_at=joined,
                    )
                )
        # Buying: a rate per year and a chance to drop out after each purchase.
        rate = rng.gammavariate(1.2, 2.5) * (2.0 if company else 1.0)
        dropout = rng.betavariate(1.0, 3.0)
        bought: list[datetime] = []
        first_order = joined + timedelta(days=rng.expovariate(1 / 20))
        if first_order < now and rng.random() < 0.85:
            bought.append(first_order.replace(microsecond=0))
            while rng.random() > dropout:
                nxt = _times(rng, bought[-1], now, rate)[:1]
                if not nxt:
                    break
                bought.append(nxt[0])
        # Each customer buys at their own scale (a separate generator, so the other draws stay put):
        # spend differs between customers, not only between orders, as lifetime-value models expect.
        basket = random.Random(f"{seed}-basket-{customer.id}").choice((1, 1, 1, 2, 2, 3, 5, 8))
        for at in bought:
            lines = []
            for sku, product, euros in rng.sample(PRODUCTS, rng.choice((1, 1, 1, 2, 3))):
                quantity = basket * Decimal(
                    rng.choice((1, 1, 1, 2, 3, 5, 10)) if sku in ("SKU-SEATS", "SKU-API") else 1
                )
                lines.append(
                    OrderLine(
                        sku=sku, product=product, quantity=quantity, unit_price=_local_price(euros, country)
                    )
                )
            roll = rng.random()
            status = (
                OrderStatus.CANCELLED
                if roll < 0.03
                else OrderStatus.REFUNDED
                if roll < 0.05
                else OrderStatus.PAID
                if at > now - timedelta(days=7)
                else OrderStatus.FULFILLED
            )
            orders.append(
                Order(
                    id=seeded_id(at, rng),
                    customer_id=customer.id,
                    ordered_at=at,
                    currency=country.currency,
                    lines=lines,
                    number=f"{country.code}-{at:%y%m}-{rng.randrange(100000):05d}",
                    status=status,
                    channel=rng.choices(list(SalesChannel), (60, 10, 10, 12, 6, 2))[0],
                    created_at=at,
                    updated_at=at,
                )
            )
        # Touches: a few a year, more for companies and VIPs.
        touches = 2.0 + (3.0 if company else 0.0) + (4.0 if "vip" in customer.tags else 0.0)
        for at in _times(rng, joined, now, touches):
            channel = rng.choices(channels, _CHANNEL_WEIGHTS)[0]
            inbound = (
                channel in (InteractionChannel.WEB_VISIT, InteractionChannel.IN_STORE) or rng.random() < 0.4
            )
            interactions.append(
                Interaction(
                    id=seeded_id(at, rng),
                    customer_id=customer.id,
                    occurred_at=at,
                    channel=channel,
                    direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
                    owner=None if inbound else customer.owner,
                    subject=rng.choice(_SUBJECTS[channel]),
                    outcome=rng.choice(_OUTCOMES),
                    duration_seconds=rng.randrange(60, 3600)
                    if channel in (InteractionChannel.CALL, InteractionChannel.MEETING)
                    else None,
                    created_at=at,
                    updated_at=at,
                )
            )
    return History(tuple(contacts), tuple(interactions), tuple(orders))


def _typo(text: str, rng: random.Random) -> str:
    """One slip of the keyboard: a swapped, dropped or doubled letter inside a word."""
    spots = [i for i in range(1, len(text) - 1) if text[i].isalpha() and text[i + 1].isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    kind = rng.randrange(3)
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]


def seed_duplicates(
    customers: list[Customer], count: int, *, seed: int = 42, now: datetime = DEMO_NOW
) -> list[tuple[Customer, Customer]]:
    """``count`` (original, re-entered copy) pairs: the same person or firm typed in again later.

    Copies get a new id and a later ``created_at``, and one or two of: a typo in the name, the
    phone typed in national format (the same number once normalized), the email in another case
    or missing, a different phone. Reproducible for the same seed.
    """
    rng = random.Random(f"duplicates-{seed}")
    pairs: list[tuple[Customer, Customer]] = []
    for original in rng.sample(customers, min(count, len(customers))):
        joined = (original.created_at or now) + (now - (original.created_at or now)) * rng.random()
        changes = rng.sample(("typo", "phone", "email", "new_phone"), rng.choice((1, 2)))
        name = _typo(original.name, rng) if "typo" in changes else original.name
        emails = original.emails
        if "email" in changes and emails:
            emails = (
                () if rng.random() < 0.3 else (attrs.evolve(emails[0], address=emails[0].address.upper()),)
            )
        phones = original.phones
        country = _COUNTRY_BY_CODE.get(original.country or "", COUNTRIES[0])
        if "phone" in changes and phones:
            # typed the local way ("030 1234567"): normalization makes it the same E.164 number
            parsed = phonenumbers.parse(phones[0].number)
            national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            with phone_region(country.code):
                phones = (PhoneNumber(number=national, label=phones[0].label),)
        if "new_phone" in changes:
            phones = (PhoneNumber(number=_phone(country, rng), label="mobile"),)
        copy = Customer(
            id=seeded_id(joined, rng),
            name=name,
            kind=original.kind,
            emails=emails,
            phones=phones,
            addresses=original.addresses,
            tags=("imported",),
            currency=original.currency,
            custom={"source": "trade fair list"},
            created_at=joined.replace(microsecond=0),
            updated_at=joined.replace(microsecond=0),
        )
        pairs.append((original, copy))
    return pairs


SUPPORT_HOURS = BusinessCalendar(
    timezone="Europe/Berlin",
    hours=tuple(
        WorkingHours(weekday=day, start="09:00", end="18:00")
        for day in (Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY, Weekday.FRIDAY)
    ),
    holidays=(HolidayRule(country="DE", subdivision="BE"),),
)
"""When the demo's support agents work: 09:00-18:00 in Berlin on weekdays, Berlin's public holidays off."""


class StepKind(enum.Enum):
    """One thing that happens to a ticket after it arrives (see `TicketStep`)."""

    NOTE = "note"
    """An agent's internal note."""
    REPLY = "reply"
    """An agent's public reply; a new ticket becomes open."""
    ASK = "ask"
    """An agent's public question; the ticket waits on the customer (pending)."""
    CUSTOMER = "customer"
    """The customer writes; a pending or solved ticket opens again."""
    SOLVE = "solve"
    """An agent solves the ticket."""
    SURVEY = "survey"
    """A satisfaction survey is sent (a `SatisfactionSurvey` with ``survey_id``)."""
    ANSWER = "answer"
    """The customer answers the survey with ``score``."""


@attrs.frozen(kw_only=True)
class TicketStep:
    """What happens to a ticket at ``at``; the agent is whoever holds the ticket by then."""

    at: datetime
    kind: StepKind
    id: str
    """The comment's id (a seeded ULID), or the survey's for `SURVEY` and `ANSWER` steps."""
    body: str = ""
    score: int | None = None

    def apply(self, ticket: Ticket, agent: str) -> Ticket:
        """``ticket`` after this step, ``agent`` writing for support (survey steps change nothing)."""
        kind, at = self.kind, self.at
        if kind is StepKind.CUSTOMER:
            ticket = ticket.add_comment(
                ticket.customer_id, self.body, at, role=AuthorRole.CUSTOMER, id=self.id
            )
            return ticket.change_status("open", at) if ticket.status in ("pending", "solved") else ticket
        if kind is StepKind.NOTE:
            return ticket.add_comment(agent, self.body, at, public=False, id=self.id)
        if kind in (StepKind.REPLY, StepKind.ASK, StepKind.SOLVE):
            ticket = ticket.add_comment(agent, self.body, at, id=self.id)
            status = {StepKind.REPLY: "open", StepKind.ASK: "pending", StepKind.SOLVE: "solved"}[kind]
            if kind is StepKind.REPLY and ticket.status != "new":
                return ticket
            return ticket.change_status(status, at, by=agent)
        return ticket

    def survey(self, ticket: Ticket) -> SatisfactionSurvey:
        """The survey a `SURVEY` step sends about ``ticket``."""
        return SatisfactionSurvey(
            id=self.id,
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
            sent_at=self.at,
            created_at=self.at,
        )


@attrs.frozen(kw_only=True)
class TicketFlow:
    """A ticket as it arrives (new, unassigned) and what will happen to it, in time order.

    Steps may lie after the generator's ``end``: tickets still open then are the backlog.
    """

    ticket: Ticket
    steps: tuple[TicketStep, ...]
    vip: bool


_TICKET_TOPICS: tuple[tuple[TicketType, str, str, int], ...] = (
    # (type, subject, team, weight)
    (TicketType.QUESTION, "How do I export my contacts?", "support", 8),
    (TicketType.QUESTION, "Can we switch plans mid-month?", "billing", 5),
    (TicketType.QUESTION, "Where do I find the API key?", "support", 6),
    (TicketType.QUESTION, "Do you support single sign-on?", "support", 4),
    (TicketType.QUESTION, "How do I add a teammate?", "support", 6),
    (TicketType.INCIDENT, "Cannot log in since this morning", "support", 6),
    (TicketType.INCIDENT, "Sync stopped working", "support", 5),
    (TicketType.INCIDENT, "Emails are not being sent", "support", 4),
    (TicketType.INCIDENT, "Dashboard shows error 500", "support", 4),
    (TicketType.INCIDENT, "Charged twice this month", "billing", 3),
    (TicketType.PROBLEM, "Imports over 10 MB time out", "support", 2),
    (TicketType.TASK, "Please update our billing address", "billing", 4),
    (TicketType.TASK, "Send a copy of the last invoice", "billing", 4),
    (TicketType.TASK, "Remove the extra seats", "billing", 3),
    (TicketType.TASK, "Add a second admin to our account", "support", 3),
)
_TICKET_CHANNELS = (
    (TicketChannel.EMAIL, 40),
    (TicketChannel.WEB_FORM, 25),
    (TicketChannel.CHAT, 15),
    (TicketChannel.PHONE, 14),
    (TicketChannel.SOCIAL, 6),
)
_PRIORITY_WEIGHTS = {  # low, normal, high, urgent
    TicketType.QUESTION: (25, 65, 9, 1),
    TicketType.TASK: (30, 60, 9, 1),
    TicketType.INCIDENT: (3, 45, 38, 14),
    TicketType.PROBLEM: (5, 45, 40, 10),
}
_FIRST_REPLY_HOURS = {  # median working hours until the first public reply
    TicketPriority.LOW: 3.5,
    TicketPriority.NORMAL: 1.8,
    TicketPriority.HIGH: 0.9,
    TicketPriority.URGENT: 0.3,
}
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 9, 8, 9, 9, 8, 7, 5, 4, 3, 3, 2, 2, 1)
"""Arrivals per hour of the day (UTC), relative: busy in European office hours."""
_WEEKDAY_WEIGHTS = (10, 10, 9, 9, 8, 3, 2)


def _working(after: datetime, hours: float, urgent: bool, office: BusinessCalendar) -> datetime:
    """``hours`` of agent time after ``after``: round the clock for urgent tickets, else office hours."""
    delay = timedelta(minutes=max(1, round(hours * 60)))
    return (after + delay if urgent else office.add(after, delay)).replace(microsecond=0)


def _arrivals(rng: random.Random, count: int, start: datetime, end: datetime) -> list[datetime]:
    days = [start.date() + timedelta(days=i) for i in range((end - start).days + 1)]
    day_weights = [_WEEKDAY_WEIGHTS[d.weekday()] for d in days]
    out: list[datetime] = []
    while len(out) < count:
        day = rng.choices(days, day_weights)[0]
        hour = rng.choices(range(24), _HOUR_WEIGHTS)[0]
        at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(seconds=rng.randrange(3600))
        if start <= at < end:
            out.append(at)
    return sorted(out)


def generate_tickets(
    customers: Sequence[Customer],
    count: int,
    *,
    seed: int = 42,
    start: datetime = DEMO_NOW - timedelta(weeks=6),
    end: datetime = DEMO_NOW,
    office: BusinessCalendar = SUPPORT_HOURS,
) -> tuple[TicketFlow, ...]:
    """``count`` support tickets arriving in ``[start, end)``, each with its timed steps; reproducible.

    Customers who joined before ``start`` write in, VIPs (tag ``vip``) three times as often. Arrivals
    follow the working week and day. Agents reply in ``office``'s business hours (urgent tickets
    around the clock), after a delay drawn per ticket (log-normal around a median per priority,
    faster for VIPs and chats, so some miss their targets); they may leave an internal note first,
    ask the customer for details (the ticket waits, pending, until the customer answers; it is
    solved after a week without an answer), or get a follow-up ("any news?") before they answer.
    Most tickets are solved; some are reopened by the customer and solved again; most solved ones
    get a survey, which about a third of customers answer (scores fall with slow or reopened tickets).
    """
    rng = random.Random(f"tickets-{seed}")
    eligible = [c for c in customers if c.created_at is None or c.created_at < start]
    if not eligible or count < 1:
        return ()
    weights = [3 if "vip" in c.tags else 1 for c in eligible]
    topics = [t[:3] for t in _TICKET_TOPICS]
    topic_weights = [t[3] for t in _TICKET_TOPICS]
    flows: list[TicketFlow] = []
    for created in _arrivals(rng, count, start, end):
        customer = rng.choices(eligible, weights)[0]
        kind, subject, team = rng.choices(topics, topic_weights)[0]
        channel = rng.choices([c for c, _ in _TICKET_CHANNELS], [w for _, w in _TICKET_CHANNELS])[0]
        priority = rng.choices(list(TicketPriority), _PRIORITY_WEIGHTS[kind])[0]
        vip = "vip" in customer.tags
        ticket = Ticket(
            id=seeded_id(created, rng),
            customer_id=customer.id,
            subject=subject,
            description=f"{subject} (via {channel.value.replace('_', ' ')})",
            channel=channel,
            priority=priority,
            type=kind,
            team=team,
            tags=("vip",) if vip else (),
            created_at=created,
            updated_at=created,
        )
        flows.append(TicketFlow(ticket=ticket, steps=tuple(_ticket_steps(rng, ticket, vip, office)), vip=vip))
    return tuple(flows)


def _ticket_steps(
    rng: random.Random, ticket: Ticket, vip: bool, office: BusinessCalendar
) -> list[TicketStep]:
    assert ticket.created_at is not None
    urgent = ticket.priority is TicketPriority.URGENT
    speed = (0.6 if vip else 1.0) * (
        0.5 if ticket.channel in (TicketChannel.CHAT, TicketChannel.PHONE) else 1.0
    )
    steps: list[TicketStep] = []

    def step(at: datetime, kind: StepKind, body: str = "", score: int | None = None, id: str = "") -> str:
        steps.append(TicketStep(at=at, kind=kind, id=id or seeded_id(at, rng), body=body, score=score))
        return steps[-1].id

    def agent(after: datetime, median_hours: float) -> datetime:
        return _working(after, median_hours * speed * rng.lognormvariate(0.0, 0.7), urgent, office)

    created = ticket.created_at
    reply = agent(created, _FIRST_REPLY_HOURS[ticket.priority])
    if rng.random() < 0.25:
        step(
            created + (reply - created) * rng.random() * 0.9,
            StepKind.NOTE,
            "Checked the account: looks like a known issue.",
        )
    if rng.random() < 0.12 and reply - created > timedelta(hours=2):
        step(created + timedelta(hours=1 + rng.random()), StepKind.CUSTOMER, "Any news on this?")
    at = reply
    asked = 0
    while asked < 2 and rng.random() < (0.35 if asked == 0 else 0.25):
        step(at, StepKind.ASK, "Could you send us a screenshot and the time it happened?")
        asked += 1
        if rng.random() < 0.06:  # the customer never answers: closed after a week of waiting
            quiet = office.add(at, timedelta(hours=45)).replace(microsecond=0)
            step(quiet, StepKind.SOLVE, "We have not heard back, so we are closing this. Reply to reopen it.")
            steps.sort(key=lambda s: s.at)
            return steps
        answer = (at + timedelta(hours=rng.expovariate(1 / 18))).replace(microsecond=0)
        step(answer, StepKind.CUSTOMER, "Here is the screenshot, it happened at 10:15.")
        at = agent(answer, 1.5)
    if rng.random() < 0.5:  # answered and fixed in one go
        step(at, StepKind.SOLVE, "Fixed: it works again on our side. Let us know if anything is off.")
        solved = at
    else:
        step(at, StepKind.REPLY, "Thanks, we are looking into it.")
        solved = agent(at, rng.lognormvariate(math.log(3.0), 1.0))
        step(solved, StepKind.SOLVE, "Solved: the change is live for your account.")
    reopened = rng.random() < 0.08
    if reopened:
        back = (solved + timedelta(hours=rng.uniform(2, 72))).replace(microsecond=0)
        step(back, StepKind.CUSTOMER, "It is happening again, please have another look.")
        solved = agent(back, 2.0)
        step(solved, StepKind.SOLVE, "Fixed for good this time, sorry for the trouble.")
    if rng.random() < 0.8:
        sent = solved + timedelta(minutes=10)
        survey = step(sent, StepKind.SURVEY)
        if rng.random() < 0.35:
            took = (solved - created) / timedelta(hours=1)
            mood = (2 if reopened else 0) + (1 if took > 48 else 0) + (1 if asked > 1 else 0)
            scores = ((2, 3, 8, 30, 57), (5, 8, 20, 37, 30), (12, 18, 30, 25, 15), (30, 25, 25, 15, 5))
            score = rng.choices(range(1, 6), scores[min(mood, 3)])[0]
            step(sent + timedelta(hours=rng.expovariate(1 / 8)), StepKind.ANSWER, score=score, id=survey)
    steps.sort(key=lambda s: s.at)
    return steps


SALES_HOURS = BusinessCalendar(
    timezone="Europe/Berlin",
    hours=tuple(
        WorkingHours(weekday=day, start="09:00", end="17:00")
        for day in (Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY, Weekday.FRIDAY)
    ),
    holidays=(HolidayRule(country="DE"),),
)
"""When the demo's sales reps work: 09:00-17:00 in Berlin on weekdays, Germany's public holidays off."""


class LeadStepKind(enum.Enum):
    """One thing that happens to a lead, or to the deal it became (see `LeadStep`)."""

    TOUCH = "touch"
    """The owner calls or writes: a new lead becomes working, and the reassignment clock restarts."""
    QUALIFY = "qualify"
    """The lead is qualified and converted: a customer (found or new), a contact and a deal."""
    DISQUALIFY = "disqualify"
    """The lead is disqualified for ``reason``."""
    NURTURE = "nurture"
    """Not ready yet: the lead goes to nurturing."""
    RUSH = "rush"
    """The owner tries to move the new deal straight to the proposal stage before scoping it."""
    SCOPE = "scope"
    """The owner learns the amount and close date: the deal moves on."""
    PROPOSE = "propose"
    """A quote goes out: the deal moves to the proposal stage."""
    NEGOTIATE = "negotiate"
    """The customer negotiates: the deal moves on, with a next step."""
    ACCEPT = "accept"
    """The customer accepts the quote: the deal is won."""
    LOSE = "lose"
    """The deal is lost for ``reason`` (a quote sent is rejected)."""


@attrs.frozen(kw_only=True)
class LeadStep:
    """What happens to a lead (or its deal) at ``at``; the owner is whoever holds the lead by then."""

    at: datetime
    kind: LeadStepKind
    reason: str = ""


@attrs.frozen(kw_only=True)
class LeadFlow:
    """A lead as it arrives (new, without an owner), what its prospect does and what will happen.

    ``won`` is how the story ends, even if that lies after the generator's ``end``: True won,
    False disqualified or lost, None nurtured. Steps may lie after ``end`` too.
    """

    lead: Lead
    steps: tuple[LeadStep, ...]
    activities: tuple[Activity, ...]
    """What the prospect did (emails opened, pricing page visits, demo requests), for lead scoring."""
    offer: tuple[QuoteLine, ...]
    """What a quote offers them, in euros."""
    estimate: Money
    """The amount the owner expects when scoping the deal, before the quote."""
    close_date: date
    """The close date the owner expects when scoping the deal."""
    customer_id: str | None
    """The existing customer the lead comes from (the same company, or the same email), if any."""
    won: bool | None


# effect on the log-odds of winning, and relative frequency
_LEAD_SOURCES = {
    "web": (0.0, 30),
    "referral": (1.4, 10),
    "event": (0.6, 12),
    "partner": (0.5, 8),
    "paid_ads": (-0.7, 25),
    "cold_list": (-1.3, 15),
}
_LEAD_INDUSTRIES = {
    "software": (1.2, 16),
    "finance": (0.9, 12),
    "healthcare": (0.4, 12),
    "logistics": (0.2, 12),
    "manufacturing": (0.0, 14),
    "retail": (-0.4, 14),
    "hospitality": (-0.8, 10),
    "education": (-1.2, 10),
}
_LEAD_SIZES = {5: (-1.4, 14), 12: (-0.6, 14), 30: (-0.4, 14), 80: (0.1, 14), 150: (0.2, 12), 400: (0.7, 10),
               900: (0.7, 8), 1500: (0.6, 6), 4000: (0.5, 5), 12000: (-0.2, 3)}  # fmt: skip
_LEAD_TITLES = {
    "CEO": (0.4, 10),
    "CTO": (0.6, 8),
    "Head of IT": (0.5, 12),
    "Operations Lead": (0.1, 14),
    "Buyer": (-0.2, 12),
    "Office Manager": (-0.4, 12),
    "Developer": (-0.3, 14),
    "Consultant": (-0.6, 10),
    "Student": (-2.5, 8),
}
_LEAD_CAMPAIGNS: dict[str, tuple[str | None, ...]] = {
    "web": ("seo", "pricing-page", None),
    "referral": (None,),
    "event": ("trade-fair-hannover", "summer-webinar"),
    "partner": ("partner-program",),
    "paid_ads": ("linkedin-ads", "search-ads"),
    "cold_list": ("list-q2",),
}
_REGIONS = {"US": "amer", "BR": "amer", "JP": "apac"}
"""Sales regions by country; every other demo country is in ``emea``."""
_TAX_RATES = {"DE": 19, "FR": 20, "GB": 20, "NL": 21, "SE": 25}
"""VAT on quotes by the customer's country; exports outside Europe carry none."""
_DISQUALIFIED = (("no budget", 30), ("not a decision maker", 20), ("too small for us", 20),
                 ("not reachable", 20), ("went with a competitor", 10))  # fmt: skip
_LOST_FROM = (  # reasons by the number of stages the deal had moved on before it was lost
    ("no real need", "no budget after all"),
    ("no decision", "timing: not this year"),
    ("price too high", "chose a competitor"),
    ("chose a competitor", "legal terms", "price too high"),
)


def _pick(rng: random.Random, table: dict[str, tuple[float, int]]) -> tuple[str, float]:
    name = rng.choices(list(table), [w for _, w in table.values()])[0]
    return name, table[name][0]


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _euros(sku: str) -> Money:
    euros = next(price for code, _, price in PRODUCTS if code == sku)
    return _local_price(euros, _COUNTRY_BY_CODE["DE"])


def _product(sku: str) -> str:
    return next(name for code, name, _ in PRODUCTS if code == sku)


def _offer(size: int | None, country: str | None, rng: random.Random) -> tuple[QuoteLine, ...]:
    """A year of a plan sized to the company, with extras for bigger firms, in euros."""
    staff = size or 3
    tax = Decimal(_TAX_RATES.get(country or "", 0))
    discount = Decimal(10 if staff >= 1000 else 5 if staff >= 200 else 0)
    plan = "SKU-TEAM" if staff < 50 else "SKU-BUSINESS"

    def line(sku: str, quantity: int) -> QuoteLine:
        return QuoteLine(
            product=_product(sku),
            quantity=Decimal(quantity),
            unit_price=_euros(sku),
            discount_percent=discount,
            tax_rate=tax,
        )

    lines = [line(plan, 12)]
    seats = min(300, staff // 20)
    if seats:
        lines.append(line("SKU-SEATS", 12 * seats))
    if staff >= 50:
        lines.append(line("SKU-ONBOARD", 1))
    if staff >= 200:
        lines.append(line("SKU-TRAIN", rng.randint(1, 4)))
    if staff >= 1000:
        lines.append(line("SKU-SUPPORT", 1))
    return tuple(lines)


def generate_leads(
    customers: Sequence[Customer],
    count: int,
    *,
    seed: int = 42,
    start: datetime = DEMO_NOW - timedelta(weeks=8),
    end: datetime = DEMO_NOW,
    office: BusinessCalendar = SALES_HOURS,
    existing: float = 0.12,
) -> tuple[LeadFlow, ...]:
    """``count`` leads arriving in ``[start, end)``, each with its prospect's activities and its story.

    Leads come from sources (web, referral, event, partner, paid ads, a cold list) and campaigns,
    at companies of eight industries and all sizes in the demo's countries and their sales
    regions (emea, amer, apac). A share ``existing`` comes from customers who joined before
    ``start``: someone new at a customer company (same company name), or a person customer
    writing from the address they are known by (same email). Whether a lead is won depends on
    its industry, source, company size and title (referrals of mid-size software firms win
    often; students from cold lists never), plus chance; prospects who will buy show more
    interest (demo requests, pricing page visits). Owners touch most leads within a few
    business hours of ``office`` and then every few hours until they decide; a few are
    forgotten for a day or more (reassignment takes them). Qualified leads become deals that
    are scoped, quoted, negotiated and then won (the quote accepted) or lost with a reason;
    some owners try to skip ahead before scoping. The same seed gives the same flows.
    """
    rng = random.Random(f"leads-{seed}")
    known = [c for c in customers if c.created_at is None or c.created_at < start]
    countries = list(COUNTRIES)
    weights = [c.weight for c in COUNTRIES]
    flows: list[LeadFlow] = []

    def later(at: datetime, low: float, high: float) -> datetime:
        return office.add(at, timedelta(hours=rng.uniform(low, high))).replace(microsecond=0)

    for created in _arrivals(rng, count, start, end):
        source, z = _pick(rng, _LEAD_SOURCES)
        campaign = rng.choice(_LEAD_CAMPAIGNS[source])
        title, effect = _pick(rng, _LEAD_TITLES)
        z += effect
        customer = rng.choice(known) if known and rng.random() < existing else None
        country = rng.choices(countries, weights)[0]
        if customer is not None:
            country = _COUNTRY_BY_CODE.get(customer.country or "", country)
            z += 0.8  # customers who know the product buy more easily
        first, last = rng.choice(country.first_names), rng.choice(country.last_names)
        company, industry, size, email = "", "", None, ""
        if customer is not None and customer.kind is CustomerKind.PERSON:
            # a freelancer who is a customer already, writing from the address we know
            name, email, title = customer.name, customer.primary_email or "", "Consultant"
            z += _LEAD_TITLES["Consultant"][0] - effect - 0.4
        else:
            name = f"{first} {last}"
            if customer is not None:
                company = customer.name
                industry = str(customer.custom.get("industry", "")) or rng.choice(INDUSTRIES)
                employees = customer.custom.get("employees")
                size = employees if isinstance(employees, int) else None
                domain = (customer.primary_email or "x@example.com").split("@")[1]
            else:
                industry = _pick(rng, _LEAD_INDUSTRIES)[0]
                size = rng.choices(list(_LEAD_SIZES), [w for _, w in _LEAD_SIZES.values()])[0]
                core = f"{rng.choice(country.company_words)} {rng.choice(_COMPANY_TRADES[industry])}"
                company = f"{core} {rng.choice(country.company_suffixes)}"
                domain = f"{_slug(core)}.{country.tld}"
            z += _LEAD_INDUSTRIES.get(industry, (0.0, 0))[0]
            z += _LEAD_SIZES[min(_LEAD_SIZES, key=lambda s: abs(s - (size or 5)))][0]
            email = f"{_ascii(first)}.{_slug(last).replace('-', '')}@{domain}"
        won: bool | None = rng.random() < _sigmoid(2.0 * z - 1.8 + rng.gauss(0, 0.3))
        lead = Lead(
            id=seeded_id(created, rng),
            name=name,
            company=company,
            title=title,
            email=EmailAddress(address=email) if email else None,
            source=source,
            campaign=campaign,
            industry=industry,
            company_size=size,
            country=country.code,
            region=_REGIONS.get(country.code, "emea"),
            created_at=created,
            updated_at=created,
        )

        forgotten = rng.random() < 0.06
        first_touch = later(created, 20, 28) if forgotten else later(created, 0.2, 6)
        decided = later(first_touch, 4, 24)
        steps = [LeadStep(at=first_touch, kind=LeadStepKind.TOUCH)]
        at = later(first_touch, 8, 15)
        while at < decided:  # the owner keeps in touch until they decide
            steps.append(LeadStep(at=at, kind=LeadStepKind.TOUCH))
            at = later(at, 8, 15)
        deal = bool(won) or rng.random() < 0.35
        if not deal:
            if rng.random() < 0.2:
                won = None
                steps.append(LeadStep(at=decided, kind=LeadStepKind.NURTURE))
            else:
                reasons = [r for r, _ in _DISQUALIFIED]
                reason = rng.choices(reasons, [w for _, w in _DISQUALIFIED])[0]
                if title == "Student":
                    reason = "student, not a buyer"
                steps.append(LeadStep(at=decided, kind=LeadStepKind.DISQUALIFY, reason=reason))
        else:
            steps.append(LeadStep(at=decided, kind=LeadStepKind.QUALIFY))
            if rng.random() < 0.12:
                steps.append(LeadStep(at=later(decided, 0.5, 6), kind=LeadStepKind.RUSH))
            at = decided
            stages = 3 if won else rng.choices(range(4), (25, 30, 25, 20))[0]
            gaps = [(8.0, 32.0), (8.0, 32.0), (8.0, 24.0), (4.0, 24.0) if won else (8.0, 32.0)][: stages + 1]
            if rng.random() < 0.15:  # the deal stalls for two or three weeks somewhere (it rots)
                gaps[rng.randrange(len(gaps))] = (48.0, 120.0)
            kinds = (LeadStepKind.SCOPE, LeadStepKind.PROPOSE, LeadStepKind.NEGOTIATE)
            for kind, (low, high) in zip(kinds[:stages], gaps, strict=False):
                at = later(at, low, high)
                steps.append(LeadStep(at=at, kind=kind))
            low, high = gaps[-1]
            if won:
                steps.append(LeadStep(at=later(at, low, high), kind=LeadStepKind.ACCEPT))
            else:
                reason = rng.choice(_LOST_FROM[stages])
                steps.append(LeadStep(at=later(at, low, high), kind=LeadStepKind.LOSE, reason=reason))
        offer = _offer(size, country.code, rng)
        net = sum((line.net.amount for line in offer), Decimal(0))
        estimate = (net * Decimal(rng.uniform(0.8, 1.25)) / 100).to_integral_value() * 100
        first_scope = next((s.at for s in steps if s.kind is LeadStepKind.SCOPE), decided)
        flows.append(
            LeadFlow(
                lead=lead,
                steps=tuple(sorted(steps, key=lambda s: s.at)),
                activities=_activities(rng, created, decided, bool(won), campaign),
                offer=offer,
                estimate=Money(max(Decimal(100), estimate), "EUR"),
                close_date=(first_scope + timedelta(days=rng.randint(14, 45))).date(),
                customer_id=None if customer is None else customer.id,
                won=won,
            )
        )
    return tuple(flows)


def _activities(
    rng: random.Random, created: datetime, decided: datetime, warm: bool, campaign: str | None
) -> tuple[Activity, ...]:
    """What a prospect did from two weeks before they became a lead until a week after the decision."""
    span = (decided + timedelta(days=7)) - (created - timedelta(days=14))

    def some(kind: str, mean: float) -> list[Activity]:
        times = _times(rng, created - timedelta(days=14), decided + timedelta(days=7), mean * 365 / span.days)
        return [Activity(kind=kind, at=t) for t in times]

    found = some("email_opened", 4.0 if warm else 2.0) + some("pricing_page_visited", 2.0 if warm else 0.5)
    if rng.random() < (0.6 if warm else 0.15):
        found.append(Activity(kind="demo_requested", at=created + (decided - created) * rng.random()))
    if campaign == "summer-webinar":
        found.append(Activity(kind="webinar_attended", at=created - timedelta(hours=rng.randint(1, 48))))
    return tuple(sorted(found, key=lambda a: (a.at, a.kind)))
