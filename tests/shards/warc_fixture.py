"""A small handwritten crawl in WARC form, written exactly as docs/contracts.md specifies.

Pages are chosen to exercise every path of the build: ordinary articles, an exact duplicate
under three URLs with different scores, a syndicated near-copy, a Wikipedia page reached
through a redirect, a German page, a bot-check page, a 404 response, a response without
WebText headers, a warcinfo record, and a truncated WARC file.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ARTICLES = {
    "council-bikes": ("Council approves protected bike lanes on Harbor Street", [
        "After a four hour meeting that stretched past midnight, the city council voted six to three on "
        "Tuesday to build protected bike lanes along the full length of Harbor Street, ending a debate "
        "that had divided shop owners and commuters for almost two years.",
        "Supporters pointed to a traffic study showing that cyclists already make up a fifth of the morning "
        "rush on the corridor, while opponents worried about losing roughly forty parking spaces in front of "
        "the bakeries and hardware stores near the old ferry terminal.",
        "Construction is expected to begin in early spring and will be paid for largely by a regional "
        "transportation grant. The public works director said concrete curbs, not plastic posts, will "
        "separate riders from car traffic, and that the signals at three intersections will be retimed.",
    ]),
    "frog-species": ("Biologists describe a tiny new frog from a cloud forest", [
        "A team of field biologists has described a previously unknown species of frog that fits comfortably "
        "on a fingernail, found in moss beds of a remote cloud forest at nearly two thousand meters.",
        "The researchers first noticed the animal by its call, a high metallic click that they initially "
        "mistook for an insect. Recordings, genetic samples and careful measurements of toe pads convinced "
        "them that it belonged to no described lineage.",
        "Because the species appears to live on a single ridge, the authors recommend that it be listed as "
        "endangered. Logging roads have reached the lower slopes, and warmer nights may push the mist line, "
        "and with it the frog's only habitat, further uphill within a few decades.",
    ]),
    "sourdough": ("A neighborhood bakery bets everything on slow sourdough", [
        "When Mara Lindqvist opened her bakery in a former laundromat, friends told her that nobody would "
        "wait two days for bread. Three years later the line forms before seven in the morning.",
        "Her loaves ferment for thirty six hours in a walk-in cooler that used to hold detergent. She mills "
        "part of the rye herself on a stone mill bought secondhand from a closing farm cooperative, and she "
        "refuses to sell anything that was baked the day before.",
        "The economics remain tight. Flour prices rose sharply last winter and the oven alone consumes more "
        "electricity than the rest of the shop. Still, Lindqvist plans to train two apprentices this year and "
        "to start a small class for children on Saturday afternoons.",
    ]),
    "library-hours": ("Public library will stay open until ten on weeknights", [
        "Starting next month the central branch of the public library will keep its doors open until ten in "
        "the evening from Monday through Thursday, the longest hours in the system's history.",
        "Librarians said that evening study rooms were booked solid during exam season and that many adults "
        "who work late shifts had asked for a place to use computers, print documents and borrow laptops "
        "after their jobs end.",
        "The extension is funded by a voter approved levy and will add four part time positions. Security "
        "staffing will also increase, and the cafe on the ground floor is negotiating to keep its kitchen "
        "running for the late crowd.",
    ]),
    "comet": ("How to spot the comet that brightens this week", [
        "Skywatchers in the northern hemisphere have a rare chance this week to see a comet with nothing more "
        "than binoculars, as the icy visitor swings closest to the sun before heading back into deep space.",
        "Astronomers recommend looking low in the western sky about forty minutes after sunset, away from "
        "streetlights. The comet appears as a fuzzy smudge with a faint tail pointing up and away from the "
        "horizon, and it should grow brighter each evening until Sunday.",
        "Photographers can capture the tail with a tripod and exposures of a few seconds. After the weekend "
        "the comet will fade quickly, and calculations suggest it will not return for roughly six thousand years.",
    ]),
    "marathon": ("Record field finishes a rainy city marathon", [
        "More than twenty thousand runners crossed the finish line on Sunday despite steady rain and gusting "
        "wind along the waterfront, setting a participation record for the twenty year old race.",
        "The women's race was decided in the final kilometer, when a schoolteacher running her second "
        "marathon passed the defending champion on the long climb past the stadium. The men's winner ran most "
        "of the course alone after breaking away near the halfway point.",
        "Volunteers handed out thousands of thermal blankets at the finish, and medical tents treated mostly "
        "blisters and mild hypothermia. Organizers said a new timing system worked without problems.",
    ]),
    "editor-release": ("Version 3.0 of a small text editor adds collaborative editing", [
        "The maintainers of a lightweight open source text editor have released version three, the first "
        "major update in four years, adding real time collaborative editing over a peer to peer connection.",
        "Under the hood the editor now stores documents as a conflict free replicated data type, which lets "
        "two people type in the same paragraph without a central server deciding whose keystroke wins.",
        "Startup time remains under fifty milliseconds on an ordinary laptop, the project says. Plugins written "
        "for the previous version need small changes, and a migration guide walks authors through the new API.",
    ]),
    "maps-exhibit": ("Museum exhibit traces five centuries of mapmaking", [
        "A new exhibition at the city history museum brings together more than one hundred maps, from hand "
        "painted sea charts with imaginary islands to early satellite photographs of the coastline.",
        "Curators arranged the rooms by the questions mapmakers tried to answer, such as where the safe harbors "
        "were, who owned which field, and how to get soldiers across a river, rather than by date.",
        "One highlight is a survey drawn by a teenage apprentice in the eighteenth century whose careful notes "
        "on tides were used by pilots for decades. The exhibit runs through October and admission is free on "
        "the first Sunday of each month.",
    ]),
    "farmers-market": ("Drought forces hard choices at the farmers market", [
        "Vendors at the Saturday farmers market say the summer drought has cut their harvests by a third, and "
        "some have stopped growing thirsty crops such as lettuce and sweet corn altogether.",
        "An orchard owner from the valley explained that she now waters her apple trees at night through drip "
        "lines to reduce evaporation, while a vegetable grower switched half of his fields to drought tolerant beans.",
        "Prices for tomatoes and berries have climbed, but shoppers have mostly kept coming. The market manager "
        "is applying for a grant that would help small farms install rainwater tanks before next season.",
    ]),
    "robotics": ("High school robotics team heads to the national finals", [
        "A team of fourteen students from Eastside High School will compete at the national robotics finals "
        "next month after their machine stacked more crates than any other robot at the regional tournament.",
        "The students designed the robot's gripper after studying how warehouse forklifts balance heavy loads, "
        "and they rewrote the control software twice after early matches showed it drifting to the left.",
        "The team still needs to raise money for travel. Local businesses have sponsored part of the trip, and "
        "the students are selling printed parts they designed to other schools to cover the rest.",
    ]),
    "chess": ("Twelve year old wins the open chess championship", [
        "A twelve year old from the north side of town won the open chess championship on Sunday, beating a "
        "field that included three titled masters and the previous two champions.",
        "She clinched the title in the final round with a patient endgame, converting a single extra pawn over "
        "more than sixty moves while her opponent searched for a drawing fortress.",
        "Her coach said she studies for about two hours a day, mostly by replaying classic games from the "
        "nineteenth century. She plans to use the prize money to travel to an international youth tournament.",
    ]),
    "ferry": ("Island ferry schedule changes for the winter season", [
        "The regional ferry authority announced that the island route will switch to its winter schedule on "
        "the first of November, with five daily crossings instead of eight and a later first departure.",
        "Officials blamed a shortage of licensed deck officers and the cost of fuel, and said the older of the "
        "two vessels will be taken out of service for engine overhaul until the spring.",
        "Islanders who commute to the mainland for work worry about the gap between the morning boats. The "
        "authority promised to add a crossing on Friday evenings and to review the schedule after a month.",
    ]),
}

# The syndicated copy of "ferry": the same story with a credit line appended.
FERRY_SYNDICATED = (ARTICLES["ferry"][0], ARTICLES["ferry"][1][:2] + [
    ARTICLES["ferry"][1][2] + " Republished with permission from the Island Courier."])

GERMAN = ("Stadtrat beschließt neue Radwege am Hafen", [
    "Nach einer langen Sitzung hat der Stadtrat am Dienstag beschlossen, entlang der gesamten Hafenstraße "
    "geschützte Radwege zu bauen. Damit endet eine Debatte, die Geschäftsleute und Pendler fast zwei Jahre "
    "lang gespalten hatte.",
    "Befürworter verwiesen auf eine Verkehrsstudie, nach der Radfahrer schon heute ein Fünftel des "
    "morgendlichen Berufsverkehrs ausmachen. Gegner befürchten den Verlust von rund vierzig Parkplätzen vor "
    "den Bäckereien und Eisenwarenläden in der Nähe des alten Fähranlegers.",
    "Die Bauarbeiten sollen im Frühjahr beginnen und werden größtenteils aus einem regionalen Förderprogramm "
    "bezahlt. Betonborde statt Plastikpfosten sollen die Radfahrer vom Autoverkehr trennen.",
])

WIKIPEDIA = ("Harbor Street - Wikipedia", [
    "Harbor Street is a major thoroughfare in the old port district of the city. It runs from the former "
    "ferry terminal in the south to the railway station in the north and is lined with shops and warehouses "
    "built in the late nineteenth century.",
    "The street was widened twice in the twentieth century. In recent years it has been the subject of a "
    "long public debate about the construction of protected cycle lanes along its full length.",
    "Several buildings on the street are listed as historic monuments, including the customs house, the "
    "seamen's mission and a cast iron market hall that now houses a food court.",
])

BOT_CHECK_HTML = (
    "<html><head><title>Just a moment...</title></head><body>"
    "<h1>Checking your browser before accessing the site.</h1>"
    "<p>Please enable JavaScript and cookies to continue. Verify you are human.</p>"
    "</body></html>"
)


def article_html(title: str, paragraphs: list[str], site: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} | {site}</title></head>"
        f"<body><header><nav><a href=\"/\">{site}</a> <a href=\"/news\">News</a> <a href=\"/about\">About</a>"
        f"</nav></header><main><article><h1>{title}</h1>{body}</article></main>"
        f"<footer><p>Copyright {site}. All rights reserved.</p></footer></body></html>"
    )


@dataclass
class Page:
    source_url: str
    final_url: str
    html: str
    score: int
    post_ids: list[str]
    subreddits: list[str]
    created_utc: int
    fetch_time: str
    status: int = 200
    redirects: list[str] = field(default_factory=list)
    webtext_headers: bool = True
    charset: str = "utf-8"  # how `html` is encoded in the response body, whatever content_type says
    content_type: str = "text/html; charset=utf-8"


@dataclass
class Fixture:
    root: str  # the crawl output dir; WARC files are under root/warc
    distinct_articles: list[str]  # source URLs that must survive as documents
    exact_dup_urls: dict[str, int]  # source url -> score, same HTML under three URLs
    syndicated: tuple[str, str]  # (original url, syndicated url)
    wikipedia_source: str
    german_url: str
    bot_check_url: str
    truncated_file: str
    truncated_survivors: list[str]  # pages before the cut in the truncated file


def _page(n: int, url: str, html: str, score: int, **kw) -> Page:
    return Page(source_url=url, final_url=kw.pop("final_url", url), html=html, score=score,
                post_ids=kw.pop("post_ids", [f"p{n:03d}"]), subreddits=kw.pop("subreddits", ["news"]),
                created_utc=1_500_000_000 + 3600 * n, fetch_time=f"2026-11-20T10:{n:02d}:00.123456Z", **kw)


def write_warc(path: str, pages: list[Page], with_warcinfo: bool = True) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True, warc_version="1.1")
        if with_warcinfo:
            writer.write_record(writer.create_warcinfo_record(os.path.basename(path), {"software": "tests"}))
        for page in pages:
            body = page.html.encode(page.charset)
            request = writer.create_warc_record(
                page.final_url, "request",
                http_headers=StatusAndHeaders("GET / HTTP/1.1", [("Host", page.final_url.split("/")[2])],
                                              is_http_request=True),
                warc_headers_dict={"WARC-Date": page.fetch_time},
            )
            headers = {"WARC-Date": page.fetch_time}
            if page.webtext_headers:
                headers.update({
                    "WebText-Source-URL": page.source_url,
                    "WebText-Post-Ids": ",".join(page.post_ids),
                    "WebText-Subreddits": ",".join(page.subreddits),
                    "WebText-Score": str(page.score),
                    "WebText-First-Created-UTC": str(page.created_utc),
                    "WebText-Redirect-Chain": " ".join(page.redirects),
                })
            status = "200 OK" if page.status == 200 else f"{page.status} Not Found"
            response = writer.create_warc_record(
                page.final_url, "response", payload=io.BytesIO(body), length=len(body),
                http_headers=StatusAndHeaders(status, [("Content-Type", page.content_type),
                                                      ("Content-Length", str(len(body)))], protocol="HTTP/1.1"),
                warc_headers_dict=headers,
            )
            writer.write_record(request)
            writer.write_record(response)


def write_fixture(root: str) -> Fixture:
    """Write the crawl under `root/warc/` (two good files, one truncated) and describe it."""
    sites = ["dailyharbor.example", "fieldnotes.test", "citybeat.example", "localpaper.test"]
    pages, distinct = [], []
    for n, (slug, (title, paragraphs)) in enumerate(ARTICLES.items()):
        site = sites[n % len(sites)]
        url = f"https://{site}/2026/{slug}"
        pages.append(_page(n, url, article_html(title, paragraphs, site), score=3 + n))
        distinct.append(url)

    dup_html = article_html("Volunteers restore the old lighthouse lens",
                            ["Volunteers spent the summer cleaning and reassembling the enormous glass lens of the "
                             "old lighthouse on the point, a job that required gloves, patience and a borrowed crane.",
                             "The lens, made of hundreds of hand polished prisms, had been stored in crates since the "
                             "light was automated decades ago. Several prisms were cracked and had to be recast.",
                             "The restored lens will be displayed in the keeper's cottage, which reopens as a small "
                             "museum in June with tours led by the grandchildren of the last keeper."],
                            "coastnews.example")
    exact_dups = {"https://coastnews.example/lighthouse": 4,
                  "https://mirror.test/lighthouse-lens": 57,
                  "https://aggregator.example/item/991": 9}
    for i, (url, score) in enumerate(exact_dups.items()):
        pages.append(_page(20 + i, url, dup_html, score=score, subreddits=["history", "news"]))

    ferry_url = distinct[list(ARTICLES).index("ferry")]
    syndicated_url = "https://islandwire.test/ferry-winter"
    pages.append(_page(30, syndicated_url, article_html(*FERRY_SYNDICATED, "islandwire.test"), score=3))

    wiki_source = "https://harborwiki.example/Harbor_Street"
    pages.append(_page(31, wiki_source, article_html(*WIKIPEDIA, "Wikipedia"), score=12,
                       final_url="https://en.wikipedia.org/wiki/Harbor_Street",
                       redirects=[wiki_source, "https://en.wikipedia.org/wiki/Harbor_Street"]))
    german_url = "https://stadtanzeiger.example/hafen-radwege"
    pages.append(_page(32, german_url, article_html(*GERMAN, "stadtanzeiger.example").replace('lang="en"', 'lang="de"'),
                       score=5, subreddits=["de"]))
    bot_url = "https://protected.test/story"
    pages.append(_page(33, bot_url, BOT_CHECK_HTML, score=8))
    pages.append(_page(34, "https://gone.example/page", "<html><body>Not found</body></html>", score=3, status=404))

    warc_dir = os.path.join(root, "warc")
    write_warc(os.path.join(warc_dir, "crawl-00000.warc.gz"), pages[:10])
    write_warc(os.path.join(warc_dir, "crawl-00001.warc.gz"), pages[10:])
    # A WARC from another tool: a response without WebText-* headers is not a harvested page.
    foreign = _page(40, "https://foreign.example/a", article_html(*ARTICLES["comet"], "foreign.example"),
                    score=0, webtext_headers=False)
    write_warc(os.path.join(warc_dir, "nested", "foreign-00000.warc.gz"), [foreign], with_warcinfo=False)

    # A file cut off in the middle of its third page.
    extra = {
        "https://latebreak.example/night-market": ("Night market returns to the riverside", [
            "The riverside night market returned on Friday after a three year pause, drawing crowds to more than "
            "sixty stalls selling dumplings, grilled corn, handmade jewelry and secondhand records.",
            "Organizers moved the stalls further from the water after flooding damaged equipment during the last "
            "season, and they added lighting along the path to the tram stop at the request of neighbors.",
            "The market will run every Friday and Saturday evening until the end of September. Vendors pay a small "
            "fee that goes toward cleaning crews and a shuttle bus for visitors with limited mobility."]),
        "https://latebreak.example/orchestra": ("Youth orchestra plays its first concert abroad", [
            "The city youth orchestra performed its first concert abroad last weekend, playing to a full hall in "
            "a partner city with a program of folk dances, a new commission and a late romantic symphony.",
            "Many of the sixty musicians had never traveled outside the country. Host families took them in for "
            "the week and organized rehearsals with a local ensemble of the same age.",
            "The conductor said the trip was possible thanks to a crowdfunding campaign and a grant from the "
            "cultural exchange program, and that a return visit is planned for next summer."]),
        "https://latebreak.example/cut-off": ("This page is cut off", ARTICLES["chess"][1]),
    }
    late = [_page(50 + i, url, article_html(title, paras, "latebreak.example"), score=4)
            for i, (url, (title, paras)) in enumerate(extra.items())]
    truncated = os.path.join(warc_dir, "crawl-00002.warc.gz")
    write_warc(truncated, late)
    size = os.path.getsize(truncated)
    with open(truncated, "r+b") as fh:
        fh.truncate(size - 300)

    return Fixture(
        root=root,
        distinct_articles=distinct + list(extra)[:2],
        exact_dup_urls=exact_dups,
        syndicated=(ferry_url, syndicated_url),
        wikipedia_source=wiki_source,
        german_url=german_url,
        bot_check_url=bot_url,
        truncated_file="crawl-00002.warc.gz",
        truncated_survivors=list(extra)[:2],
    )
