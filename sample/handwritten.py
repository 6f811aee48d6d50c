"""Handwritten text for the sample web: non-English articles, reader comments, special pages.

Everything here was written for this project. The English article bodies come from CPython's
`pydoc_data.topics` (see generate.py); these pieces cover what that source cannot: other
languages, the chatter around an article, and pages an extractor must learn to reject.
"""

# (host, path, title, paragraphs); served in the site's own language.
FOREIGN_ARTICLES = {
    "de": [
        ("zeitung.example", "/kultur/2017/bibliotheken-im-wandel.html", "Bibliotheken im Wandel", [
            "Wer in diesen Wochen eine Stadtbibliothek betritt, findet längst nicht mehr nur Regale voller "
            "Bücher. Viele Häuser haben sich in den letzten Jahren zu Treffpunkten entwickelt, an denen "
            "Schülerinnen für Prüfungen lernen, Rentner Zeitung lesen und Familien am Samstagvormittag "
            "gemeinsam Brettspiele ausleihen.",
            "Die Leiterin der Zentralbibliothek beschreibt den Wandel nüchtern: Die Ausleihzahlen gedruckter "
            "Romane seien zwar leicht gesunken, die Zahl der Besucher aber deutlich gestiegen. Gefragt seien "
            "vor allem ruhige Arbeitsplätze, ein schnelles Netz und Menschen, die bei der Suche nach "
            "verlässlichen Informationen helfen können.",
            "Dafür braucht es Geld und Personal. Der Stadtrat hat im Frühjahr beschlossen, die Öffnungszeiten "
            "am Abend zu verlängern, ohne zusätzliche Stellen zu schaffen. Die Beschäftigten sehen das "
            "kritisch, denn schon heute bleibt kaum Zeit für die Beratung, die den Kern ihrer Arbeit ausmacht.",
            "Trotzdem überwiegt die Zuversicht. Eine Bibliothek, so heißt es im Haus, sei einer der letzten "
            "Orte, an denen man sich ohne Eintritt und ohne Kaufzwang aufhalten dürfe. Genau das mache sie "
            "für eine Stadt so wertvoll.",
        ]),
        ("zeitung.example", "/wissen/2017/warum-der-herbst-so-bunt-ist.html", "Warum der Herbst so bunt ist", [
            "Jedes Jahr im Oktober färben sich die Wälder gelb, orange und rot. Dahinter steckt kein "
            "Zufall, sondern ein sorgfältig geplanter Rückzug der Bäume. Bevor die Blätter fallen, holen "
            "sie wertvolle Nährstoffe aus dem Laub zurück in Äste und Wurzeln.",
            "Dabei wird zuerst das grüne Chlorophyll abgebaut. Die gelben und orangefarbenen Farbstoffe, "
            "die den ganzen Sommer über im Blatt vorhanden waren, werden erst jetzt sichtbar. Das "
            "leuchtende Rot dagegen bilden manche Arten im Herbst neu, vermutlich als Schutz gegen zu viel "
            "Sonnenlicht an kalten Tagen.",
            "Wie kräftig die Farben ausfallen, hängt vom Wetter ab. Sonnige Tage und kühle, aber nicht "
            "frostige Nächte sorgen für besonders intensive Töne. Ein nasser, trüber Herbst lässt das Laub "
            "dagegen schnell braun werden und abfallen.",
        ]),
    ],
    "fr": [
        ("lejournal.example", "/societe/2017/le-retour-des-trains-de-nuit.html", "Le retour des trains de nuit", [
            "Longtemps considérés comme une relique d'un autre temps, les trains de nuit reviennent dans "
            "les conversations. Plusieurs compagnies européennes annoncent de nouvelles lignes, et les "
            "voyageurs semblent prêts à échanger quelques heures de sommeil contre un trajet plus sobre.",
            "L'argument est simple : partir le soir d'une grande ville et se réveiller dans une autre, "
            "sans passer par l'aéroport ni perdre une journée sur la route. Pour beaucoup de familles, "
            "la couchette redevient une solution pratique autant qu'une petite aventure.",
            "Reste la question du prix. Les voitures sont coûteuses à entretenir, le personnel travaille "
            "de nuit et les sillons ferroviaires ne sont pas toujours disponibles. Sans soutien public, "
            "préviennent les spécialistes, une partie de ces lignes risque de disparaître aussi vite "
            "qu'elle est revenue.",
            "Les usagers, eux, demandent surtout de la régularité et des réservations simples. Un billet "
            "qui se trouve en quelques clics, disent-ils, fera plus pour le train de nuit que toutes les "
            "campagnes de publicité.",
        ]),
        ("lejournal.example", "/sciences/2017/pourquoi-le-pain-rassit.html", "Pourquoi le pain rassit-il ?", [
            "Une baguette achetée le matin n'a plus la même saveur le soir. Contrairement à une idée "
            "répandue, le pain ne rassit pas parce qu'il sèche, mais parce que l'amidon qu'il contient "
            "change lentement de structure après la cuisson.",
            "Dans le four, les grains d'amidon absorbent l'eau et gonflent. En refroidissant, leurs "
            "molécules se réorganisent peu à peu en cristaux, ce qui rend la mie plus ferme et la croûte "
            "plus molle. Ce phénomène est plus rapide au réfrigérateur qu'à température ambiante.",
            "Pour garder son pain plus longtemps, mieux vaut donc le conserver dans un sac en tissu ou le "
            "congeler en tranches. Un passage rapide au four suffit ensuite à lui rendre une partie de "
            "son croustillant.",
        ]),
    ],
    "es": [
        ("elperiodico.test", "/cultura/2017/la-siesta-en-la-ciudad.html", "La siesta en la ciudad moderna", [
            "En muchas ciudades la siesta parece una costumbre en retirada. Los horarios de oficina, los "
            "trayectos largos y las comidas rápidas han dejado poco espacio para el descanso de mediodía "
            "que durante generaciones marcó el ritmo de los pueblos.",
            "Sin embargo, los médicos recuerdan que una pausa breve después de comer puede mejorar la "
            "atención y el estado de ánimo. No hace falta dormir una hora: veinte minutos bastan para "
            "recuperar energía sin despertarse aturdido.",
            "Algunas empresas ya han habilitado salas de descanso, y ciertos ayuntamientos estudian "
            "adaptar los horarios de los servicios públicos al calor del verano. La siesta, dicen sus "
            "defensores, no es pereza, sino una manera sensata de organizar el día.",
        ]),
        ("elperiodico.test", "/ciencia/2017/el-agua-del-desierto.html", "Cómo se consigue agua en el desierto", [
            "En las zonas más secas del planeta, cada gota cuenta. Desde hace siglos, los habitantes del "
            "desierto recogen el rocío de la mañana, excavan pozos profundos y construyen canales "
            "subterráneos que evitan que el agua se evapore bajo el sol.",
            "Hoy se suman nuevas técnicas. Las redes que atrapan la niebla en las colinas costeras pueden "
            "reunir cientos de litros al día, y las plantas desalinizadoras convierten el agua del mar en "
            "agua potable, aunque consumen mucha energía.",
            "Los expertos insisten en que ninguna tecnología sustituye al ahorro. Reparar las tuberías que "
            "pierden agua y regar de forma eficiente sigue siendo la medida más barata y más eficaz.",
        ]),
    ],
}

# German Wikipedia-style article (served on de.wikipedia.org).
DE_WIKI = ("Stadtbibliothek", [
    "Eine Stadtbibliothek ist eine öffentliche Bibliothek, die von einer Stadt oder Gemeinde getragen "
    "wird und allen Einwohnern offensteht. Sie stellt Bücher, Zeitschriften, Tonträger und digitale "
    "Medien zur Ausleihe und zur Nutzung vor Ort bereit.",
    "Die ersten städtischen Bibliotheken entstanden im Spätmittelalter aus Ratsbibliotheken, die "
    "zunächst nur den Mitgliedern des Rates dienten. Im 19. Jahrhundert verbreiteten sich "
    "Volksbibliotheken, die breiten Bevölkerungsschichten den Zugang zu Literatur ermöglichen sollten.",
    "Heute verstehen sich viele Stadtbibliotheken als Lern- und Begegnungsorte. Neben der Ausleihe "
    "bieten sie Veranstaltungen, Schulungen und Arbeitsplätze an.",
])

BUECHER_REVIEW = ("Buchbesprechung: Ein Sommer am See", [
    "Der neue Roman erzählt von drei Geschwistern, die nach dem Tod ihrer Mutter ein letztes Mal das "
    "Ferienhaus der Familie am See aufsuchen. Was als Abschied gedacht ist, wird zu einer Reise in "
    "alte Kränkungen und vergessene Versprechen.",
    "Die Autorin schreibt ruhig und genau. Sie lässt ihren Figuren Zeit, und gerade die kleinen "
    "Gesten, ein verschobener Stuhl, ein ungeöffneter Brief, tragen mehr Bedeutung als jeder Streit.",
    "Nicht jede Nebenfigur überzeugt, und das Ende kommt etwas zu schnell. Trotzdem ist das Buch "
    "eine lohnende Lektüre für alle, die leise Familiengeschichten mögen.",
])

# Reader comments appended below articles (the boilerplate an extractor should drop).
COMMENTS = [
    ("mkessler", "Great write-up, bookmarking this for later."),
    ("dave_b", "I still don't get why anyone would do it this way, but thanks for explaining."),
    ("throwaway_42", "First!"),
    ("J. Ortega", "This saved me an afternoon of debugging. Thank you!"),
    ("lurker", "Can you do a follow-up on the edge cases? The second example confused me."),
    ("anna.r", "We ran into exactly this at work last week. Sharing with the team."),
    ("pedantic_pete", "Small nitpick: the third paragraph contradicts the official docs."),
    ("Sam", "Reading this on my phone and the code blocks overflow the screen, FYI."),
    ("oldtimer", "Back in my day we just read the manual. Kids these days."),
    ("k_nguyen", "Clear and to the point. More articles like this please."),
]

AUTHORS = ["Maria Lopez", "James Whitfield", "Priya Raman", "Tom Becker", "Grace Okafor",
           "Daniel Kim", "Sophie Laurent", "Alex Novak", "Hannah Schultz", "Omar Haddad"]

BOT_CHECK = [
    "Checking your browser before accessing shield.example.",
    "This process is automatic. Your browser will redirect to your requested content shortly.",
    "Please enable JavaScript and cookies to continue.",
    "Please allow up to 5 seconds…",
    "DDoS protection by ShieldFront. Ray ID: 3a9f0c1d2e4b5a67",
]

PAYWALL_TEASER = (
    "City council members voted late on Tuesday to approve a budget that reshapes how the city pays "
    "for its buses, its parks and its libraries, ending months of negotiation that at times looked "
    "likely to collapse."
)
PAYWALL_STUB = [
    "Subscribe to continue reading.",
    "You have reached your limit of free articles this month.",
    "Already a subscriber? Log in.",
    "Get unlimited digital access for $1 a week. Cancel anytime.",
]

SPAM_LINES = [
    "BEST CHEAP WATCHES BUY NOW BEST PRICE",
    "cheap watches cheap watches cheap watches discount watches online",
    "Click here for the best deals on watches!!! Limited offer!!!",
]

SHORT_PAGE = ("Site update", "We moved. See you soon.")
