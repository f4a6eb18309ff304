"""Generate recipes/data/sentences.jsonl, the demo dataset of skybatch.

Every sentence is built here from hand-written parts (subjects, past-tense verb phrases,
places or times, and reasons), grouped by topic so the parts of one sentence belong
together. Nothing is copied from elsewhere. The output is deterministic: the same script
always writes the same file, so run ids built from its fingerprint stay stable.

    python recipes/data/make_sentences.py            # writes sentences.jsonl beside this file
    python recipes/data/make_sentences.py --count 4000 --out /tmp/s.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20261123
COUNT = 4000

# topic -> (subjects, verb phrases in the past tense, places/times, reasons/after-clauses)
# Word lists, kept dense on purpose (one item per line would make this 1,000 lines).
# fmt: off
TOPICS: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "cooking": (
        ["the head chef", "my grandmother", "a young apprentice", "the night cook",
         "our neighbour from the third floor", "the baker on the corner", "a retired sailor",
         "the twins", "my uncle", "the new sous-chef", "a patient teacher", "the caterer"],
        ["sliced the onions paper thin", "tasted the soup twice", "burned the first batch of toast",
         "rolled out the pastry with a wine bottle", "added too much salt to the stew",
         "kneaded the dough for ten minutes", "roasted a tray of carrots and parsnips",
         "whisked the eggs until they turned pale", "let the bread rise under a damp towel",
         "forgot the rice on the stove", "grated fresh ginger into the broth",
         "wrote the recipe on the back of an envelope", "simmered the beans all afternoon",
         "served the pie while it was still warm"],
        ["before the dinner rush", "in the cramped back kitchen", "on a cold Sunday morning",
         "just after midnight", "at the village fair", "for the whole family",
         "during the power cut", "in a borrowed cast-iron pan", "on the first day of spring",
         "while the radio played old songs"],
        ["because the guests were due at eight", "and nobody noticed the difference",
         "although the oven had been unreliable for weeks", "so the kitchen smelled of garlic for days",
         "because the market had run out of butter", "and the neighbours asked for the recipe",
         "after a long argument about cumin", "since the children refused to eat anything else"],
    ),
    "gardening": (
        ["the old gardener", "my sister", "a volunteer from the allotment",
         "the woman next door", "our landlord", "a group of schoolchildren", "the retired postman",
         "the head groundskeeper", "my father", "a curious toddler"],
        ["planted a row of broad beans", "pruned the apple tree too hard",
         "dug a new bed for the tomatoes", "spread compost along the fence",
         "found a toad under the rhubarb leaves", "watered the seedlings by hand",
         "tied the sweet peas to bamboo canes", "pulled up a wheelbarrow of nettles",
         "saved the seeds from the best pumpkin", "built a small pond for the frogs",
         "netted the strawberries against the blackbirds", "moved the lavender to a sunnier corner"],
        ["on a grey April morning", "behind the community hall", "in the last hour of daylight",
         "after the first frost", "along the railway embankment", "in a muddy pair of boots",
         "during the long dry summer", "between two showers of rain", "at the edge of the orchard"],
        ["because the slugs had eaten everything else", "and the harvest doubled the next year",
         "while the robins watched from the hedge", "so the soil would be ready by May",
         "although the forecast warned of hail", "after reading an old almanac",
         "since the lawn had never grown well there"],
    ),
    "astronomy": (
        ["the amateur astronomer", "a student from the observatory", "my cousin",
         "the club treasurer", "a retired engineer", "the night watchman", "two friends from college",
         "the planetarium guide", "an eager beginner", "the professor"],
        ["pointed the telescope at Jupiter", "counted fourteen meteors in an hour",
         "photographed the Andromeda galaxy", "spotted the space station crossing the sky",
         "sketched the craters near the lunar terminator", "aligned the mount with the pole star",
         "watched Saturn's rings tilt into view", "logged the brightness of a variable star",
         "found the Orion Nebula without a map", "measured the time of the eclipse",
         "cleaned the dusty mirror of an old reflector", "explained why the planets wander"],
        ["from a dark field outside town", "on the roof of the library", "just before dawn",
         "on a clear winter night", "during the club's open evening", "high in the mountains",
         "through a gap in the clouds", "while the town slept", "beside a frozen lake"],
        ["because the moon had finally set", "and the whole group cheered",
         "although the dew kept fogging the lens", "so the next observer knew where to look",
         "after waiting three nights for clear skies", "while an owl called from the woods",
         "since the street lights had been switched off"],
    ),
    "sailing": (
        ["the skipper", "a nervous first-time crew member", "my aunt", "the harbour master",
         "the youngest sailor in the club", "a fisherman from the next village",
         "the instructor", "the navigator", "two old friends", "the race officer"],
        ["reefed the mainsail as the wind rose", "tied a bowline without looking",
         "steered the dinghy around the buoy", "checked the tide tables twice",
         "hoisted the spinnaker too early", "anchored in a quiet bay",
         "patched a small tear in the jib", "read the clouds for signs of a squall",
         "pumped the bilge for an hour", "coiled the ropes neatly on the deck",
         "plotted a course around the headland", "sailed home by the light of the lighthouse"],
        ["off the rocky point", "in a stiff westerly breeze", "at slack water",
         "on the last race of the season", "in thick morning fog", "outside the harbour wall",
         "under a sky full of gulls", "late in the afternoon", "halfway across the estuary"],
        ["because the forecast had changed", "and the boat settled on an even keel",
         "although the crew were soaked to the skin", "so they reached the mooring before dark",
         "after the engine refused to start", "while the seals watched from the sandbank",
         "since nobody trusted the old compass"],
    ),
    "music": (
        ["the cellist", "a street musician", "the choir director", "my nephew",
         "the lead guitarist", "an elderly piano teacher", "the drummer",
         "a shy student", "the conductor", "the festival organiser"],
        ["practised the same scale for an hour", "tuned the violin by ear",
         "wrote a song about the harbour", "played the opening bars too fast",
         "recorded a demo in the bathroom", "taught the children a simple round",
         "broke a string in the middle of the solo", "rearranged the hymn for brass",
         "hummed the melody all the way home", "kept time with a wooden spoon",
         "sang the harmony an octave lower", "improvised a blues over two chords"],
        ["in the echoing church hall", "at the open-air concert", "during the rehearsal",
         "on the crowded platform", "late on a Friday night", "in a tiny attic room",
         "in front of a sold-out audience", "at the wedding reception", "beside the fountain"],
        ["because the sheet music had blown away", "and the audience asked for more",
         "although the piano was badly out of tune", "so the choir could find the note",
         "after hearing an old record on the radio", "while the rain drummed on the roof",
         "since the band had lost its singer"],
    ),
    "railways": (
        ["the train driver", "a conductor with a silver whistle", "the station master",
         "a railway enthusiast", "the signal engineer", "my grandfather",
         "a commuter with a folding bicycle", "the night porter", "the track inspector",
         "a tourist with a heavy rucksack"],
        ["waited for the signal to turn green", "announced a twenty-minute delay",
         "checked every ticket in the carriage", "oiled the points before the first train",
         "photographed the steam locomotive", "missed the last connection",
         "walked the line with a lamp", "changed trains at the junction",
         "timed the express with a stopwatch", "found a lost umbrella on the seat",
         "read the timetable upside down", "helped a passenger with a pushchair"],
        ["on the branch line to the coast", "at the draughty country station",
         "in the middle of the night", "during the snowstorm", "on the viaduct above the river",
         "in the crowded rush hour", "at the end of a long shift", "near the old engine shed"],
        ["because a tree had fallen across the track", "and the train arrived exactly on time",
         "although the heating had failed", "so the passengers could catch the ferry",
         "after the signals lost power", "while the kettle boiled in the signal box",
         "since the timetable had changed that morning"],
    ),
    "software": (
        ["the junior developer", "a tired maintainer", "the team lead", "my flatmate",
         "the release manager", "a contractor from another city", "the database administrator",
         "an intern", "the security reviewer", "the on-call engineer"],
        ["traced the bug to a missing semicolon", "rewrote the parser over the weekend",
         "added a test that failed on purpose", "reverted the last deployment",
         "profiled the slow query", "documented the retry logic",
         "renamed a confusing variable", "rolled back the database migration",
         "found a race condition in the scheduler", "reviewed forty pull requests",
         "replaced the cron job with a queue", "halved the memory use of the importer"],
        ["late on a Thursday", "before the morning stand-up", "during the outage",
         "in a quiet corner of the office", "on a slow train home", "after the release freeze",
         "in the middle of the sprint", "from a cafe with unreliable wifi"],
        ["because the logs made no sense", "and the error rate dropped to zero",
         "although the deadline was the next day", "so the nightly build would pass again",
         "after a customer reported lost orders", "while the coffee went cold",
         "since nobody remembered why the code existed"],
    ),
    "chemistry": (
        ["the lab technician", "a first-year student", "the chemistry teacher",
         "the research fellow", "my lab partner", "the safety officer", "a visiting professor",
         "the graduate student", "the stores manager"],
        ["titrated the acid until the solution turned pink", "weighed the crystals on a balance",
         "labelled every flask by hand", "cleaned the fume cupboard", "heated the sample gently",
         "filtered the cloudy mixture twice", "recorded the melting point",
         "calibrated the pH meter", "diluted the stock solution", "spilled a little copper sulphate",
         "repeated the experiment three times", "noticed a faint smell of almonds"],
        ["in the basement laboratory", "during the practical exam", "on a Monday morning",
         "under the flickering strip lights", "before the inspection", "at the end of term",
         "in borrowed safety goggles", "at the long bench by the window"],
        ["because the first result looked wrong", "and the readings finally agreed",
         "although the thermometer was cracked", "so the next class could use the bench",
         "after the fire alarm interrupted them", "while the kettle of distilled water cooled",
         "since the supervisor insisted on it"],
    ),
    "history": (
        ["the archivist", "a local historian", "my great-aunt", "the museum curator",
         "a schoolteacher", "the parish clerk", "an amateur genealogist", "the librarian",
         "a visiting researcher"],
        ["unfolded a map from the seventeenth century", "transcribed a faded letter",
         "found a list of names in the church records", "dated the photograph by its uniforms",
         "catalogued a box of old postcards", "traced the family back five generations",
         "read the diary of a lighthouse keeper", "compared two accounts of the flood",
         "identified the mill on an old engraving", "repaired the binding of a ledger",
         "recorded the memories of an elderly farmer", "matched the coins to a Roman mint"],
        ["in the county record office", "on a wet afternoon", "in the attic of the old rectory",
         "by the light of a reading lamp", "during the heritage open days",
         "in a dusty cupboard under the stairs", "at the back of the museum", "over several winters"],
        ["because the dates did not add up", "and the village learned a forgotten story",
         "although half the pages were missing", "so the exhibition could open on time",
         "after a visitor asked a simple question", "while the rain streamed down the windows",
         "since the building was about to be sold"],
    ),
    "cycling": (
        ["the courier", "a commuter in a yellow jacket", "my brother", "the mechanic",
         "a group of club riders", "the postwoman", "a student on an old racer",
         "the tour guide", "a father with a child seat"],
        ["fixed a puncture at the roadside", "climbed the hill without stopping",
         "took the long way along the canal", "oiled the chain before the ride",
         "rang the bell at a wandering dog", "raced the bus to the next stop",
         "locked the bike to the railings", "adjusted the saddle by a centimetre",
         "carried the shopping in two panniers", "rode through the park at dawn",
         "replaced the worn brake pads", "waited patiently at the red light"],
        ["in the pouring rain", "on the first warm evening of the year", "through the city centre",
         "along the old towpath", "on a quiet country lane", "in heavy traffic",
         "before work", "on the way back from the market"],
        ["because the tram drivers were on strike", "and arrived earlier than ever",
         "although the headwind never let up", "so the groceries stayed dry",
         "after a long winter indoors", "while the swifts screamed overhead",
         "since the car had failed its test"],
    ),
    "hiking": (
        ["the mountain guide", "a pair of walkers from the hostel", "my best friend",
         "the park ranger", "a family with two dogs", "the photographer",
         "an experienced scrambler", "the map reader of the group", "a lone hiker"],
        ["followed the cairns across the plateau", "filled the water bottles at a stream",
         "turned back below the summit", "shared a flask of tea at the top",
         "lost the path in the heather", "crossed the river on stepping stones",
         "watched an eagle circle the ridge", "packed an extra layer just in case",
         "took a compass bearing in the mist", "found a sheltered spot for lunch",
         "counted the lakes from the summit", "helped a tired walker down the scree"],
        ["above the tree line", "in thick cloud", "on a bright October day",
         "at the head of the valley", "in the shadow of the crags", "late in the afternoon",
         "near the abandoned shepherd's hut", "on the steep descent"],
        ["because the weather was turning", "and reached the pub before it closed",
         "although their boots were soaked", "so nobody had to walk in the dark",
         "after the bridge had been washed away", "while the sheep stared at them",
         "since the bus back only ran twice a day"],
    ),
    "library": (
        ["the librarian", "a retired judge", "a boy with a stack of comics",
         "the reading group", "my mother", "a student revising for exams",
         "the volunteer at the desk", "a novelist researching a plot", "the cataloguer"],
        ["renewed the same book for the fourth time", "found a pressed flower between the pages",
         "recommended a detective novel", "shelved the returns by the window",
         "repaired a torn atlas with tape", "read the newspapers from cover to cover",
         "ordered a rare book from another branch", "fell asleep in the armchair",
         "ran a story hour for toddlers", "sorted the donations into boxes",
         "whispered the answer to a crossword clue", "copied a poem into a notebook"],
        ["on a rainy Saturday", "in the quiet reading room", "just before closing time",
         "during the summer holidays", "at the long oak table", "beside the radiator",
         "in the children's corner", "on the mobile library van"],
        ["because the internet was down", "and the queue stretched to the door",
         "although the heating had been turned off", "so the shelves looked tidy for the inspection",
         "after the council threatened to close the branch", "while the snow fell outside",
         "since the book was already three weeks overdue"],
    ),
    "birds": (
        ["a grey heron", "the robin in our garden", "a flock of starlings", "the old crow",
         "a pair of swallows", "a young kestrel", "the tawny owl", "a wren",
         "a family of ducks", "the blackbird"],
        ["waited motionless at the water's edge", "sang from the top of the aerial",
         "built a nest in the gutter", "chased a cat out of the garden",
         "hovered above the motorway verge", "stole crumbs from the picnic table",
         "called all night from the churchyard", "landed on the frozen pond",
         "dived for a fish and missed", "followed the plough across the field",
         "gathered moss for its nest", "perched on the washing line"],
        ["at first light", "in the middle of winter", "beside the canal", "on a windy afternoon",
         "in the hawthorn hedge", "above the reed beds", "outside the kitchen window",
         "on the first day of May"],
        ["because the insects were flying low", "and the birdwatchers held their breath",
         "although the rain never stopped", "so the chicks would be fed",
         "after the storm had passed", "while the children watched in silence",
         "since the feeder had been filled that morning"],
    ),
    "ocean": (
        ["the marine biologist", "a diver from the research station", "the ferry captain",
         "a child with a bucket", "the lifeguard", "the lighthouse keeper",
         "a team of volunteers", "the boat's cook", "an old beachcomber"],
        ["counted the crabs in a rock pool", "spotted a pod of dolphins",
         "measured the temperature of the water", "collected plastic from the tideline",
         "photographed a jellyfish the size of a plate", "logged the height of the waves",
         "found a piece of sea glass", "tagged a sleepy turtle",
         "watched the tide cover the causeway", "mapped the kelp forest",
         "rescued a stranded seal pup", "heard whales through the hydrophone"],
        ["at low tide", "off the northern cape", "on a calm grey morning",
         "in the clear water of the cove", "during the spring survey", "beyond the breakers",
         "as the sun went down", "on the long sandy beach"],
        ["because the water was unusually warm", "and the data surprised everyone",
         "although the boat rolled heavily", "so the survey could be repeated next year",
         "after a storm had churned up the seabed", "while the gulls circled overhead",
         "since the harbour was closed for repairs"],
    ),
    "building": (
        ["the architect", "a bricklayer", "the site foreman", "my neighbour",
         "a carpenter", "the structural engineer", "a young apprentice", "the plumber",
         "the building inspector"],
        ["drew the plans on squared paper", "laid the last course of bricks",
         "checked the beam with a spirit level", "replaced the rotten window frame",
         "poured the concrete for the foundations", "argued about the colour of the tiles",
         "fitted a skylight in the attic", "insulated the draughty loft",
         "restored the old staircase", "measured the room three times",
         "found a coin from 1923 under the floorboards", "hung the front door straight"],
        ["on a freezing morning", "before the scaffolding came down", "in the half-built kitchen",
         "at the top of the ladder", "during the heatwave", "behind the old warehouse",
         "on the first floor landing", "over a long weekend"],
        ["because the ground was softer than expected", "and the house stayed warm all winter",
         "although the delivery arrived late", "so the family could move in by Christmas",
         "after the inspector raised a concern", "while the radio blared in the van",
         "since the original plans had been lost"],
    ),
    "football": (
        ["the goalkeeper", "a substitute from the youth team", "the captain", "the referee",
         "my cousin's coach", "the left back", "a fan in the front row", "the groundsman",
         "the new striker"],
        ["saved a penalty in the last minute", "scored with a looping header",
         "marked the pitch with fresh white lines", "argued about the offside rule",
         "cleared the ball off the line", "ran forty metres to make the tackle",
         "handed out oranges at half time", "missed an open goal",
         "blew the whistle for a free kick", "organised the defensive wall",
         "took the corner short", "cheered until their voice gave out"],
        ["in front of a small home crowd", "on a waterlogged pitch", "in the cup final",
         "during the Sunday league match", "under the floodlights", "in the second half",
         "on a ground by the river", "in the freezing drizzle"],
        ["because the team needed a draw", "and the whole bench jumped up",
         "although the wind was against them", "so the match went to extra time",
         "after a week of hard training", "while the visiting fans fell silent",
         "since the regular keeper was injured"],
    ),
    "markets": (
        ["the fishmonger", "a cheese seller", "the flower stall owner", "my grandmother",
         "a young couple", "the greengrocer", "a tourist with a phrase book",
         "the market inspector", "the baker's son"],
        ["haggled over the price of a basket of pears", "sold out of bread before ten",
         "arranged the apples in a careful pyramid", "gave away bruised tomatoes",
         "weighed the cherries on an old brass scale", "shouted the prices of the day",
         "wrapped the fish in newspaper", "tasted every kind of olive",
         "counted the change twice", "packed up the stall in the rain",
         "bought far more cheese than planned", "chalked the prices on a slate"],
        ["on a busy Saturday morning", "under the striped awnings", "in the covered market",
         "at the end of the day", "by the cathedral steps", "in the early morning chill",
         "on the last market day before the holiday", "beside the clock tower"],
        ["because the harvest had been good", "and the queue never seemed to shrink",
         "although the prices had gone up again", "so nothing would go to waste",
         "after a delivery van blocked the square", "while a busker played the accordion",
         "since the supermarket had closed for refurbishment"],
    ),
    "medicine": (
        ["the district nurse", "a junior doctor", "the pharmacist", "the paramedic",
         "a patient in the waiting room", "the midwife", "the ward sister",
         "a medical student", "the surgeon"],
        ["checked the blood pressure twice", "explained the side effects slowly",
         "bandaged a sprained ankle", "wrote up the notes at the end of the shift",
         "listened carefully to the child's chest", "refilled the prescription",
         "set up the drip", "reassured the anxious family", "ordered an X-ray",
         "washed their hands for the hundredth time", "cleaned and dressed the wound",
         "updated the vaccination record"],
        ["on the busy night shift", "in the small village surgery", "at the roadside",
         "in a quiet side room", "during the flu season", "on the ward round",
         "before the clinic opened", "in the back of the ambulance"],
        ["because the symptoms had changed", "and the patient went home the same day",
         "although the waiting room was full", "so the results would arrive by morning",
         "after a long conversation with the family", "while the rain battered the windows",
         "since the usual doctor was on holiday"],
    ),
    "weather": (
        ["the meteorologist", "a farmer", "the weather station volunteer",
         "my grandfather", "a pilot", "the ferry company", "the forecaster on the radio",
         "a keen storm chaser", "the school caretaker"],
        ["read the barometer every morning", "measured two inches of rain in the gauge",
         "predicted a sharp frost", "warned of gales along the coast",
         "recorded the hottest day of the year", "watched the thunderclouds build",
         "cleared the snow from the weather screen", "noted the first fog of autumn",
         "photographed a double rainbow", "checked the wind speed on the hilltop",
         "compared the forecast with the sky", "logged the temperature at noon"],
        ["on the exposed hilltop", "early in the season", "for thirty years",
         "during the long drought", "before the storm arrived", "at the edge of the moor",
         "in the middle of the night", "beside the old stone wall"],
        ["because the harvest depended on it", "and the forecast proved exactly right",
         "although the instruments were old", "so the ferries stayed in port",
         "after the river burst its banks", "while the cattle sheltered by the hedge",
         "since the automatic station had broken down"],
    ),
}

OPENERS = ["Later that week", "To everyone's surprise", "Without a word", "Once again",
           "For the first time", "Slowly and carefully", "In the end", "Just as planned",
           "Somewhat reluctantly", "With great care"]
# fmt: on


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _sentence(rng: random.Random, parts: tuple[list[str], list[str], list[str], list[str]]) -> str:
    subjects, verbs, places, reasons = parts
    s, v, p, r = (rng.choice(x) for x in (subjects, verbs, places, reasons))
    shape = rng.randrange(6)
    if shape == 0:
        return f"{_cap(s)} {v} {p}."
    if shape == 1:
        return f"{_cap(p)}, {s} {v}."
    if shape == 2:
        return f"{_cap(s)} {v} {p} {r}."
    if shape == 3:
        return f"{rng.choice(OPENERS)}, {s} {v} {r}."
    if shape == 4:
        s2 = rng.choice([x for x in subjects if x != s])
        v2 = rng.choice([x for x in verbs if x != v])
        joiner = rng.choice(["and", "while", "but later"])
        return f"{_cap(s)} {v}, {joiner} {s2} {v2}."
    return f"{_cap(p)}, {s} {v} {r}."


def generate(count: int, seed: int = SEED) -> list[dict[str, str]]:
    """``count`` distinct sentences, cycling over the topics, always the same for one seed."""
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    while len(rows) < count:
        topic = topics[len(rows) % len(topics)]
        text = _sentence(rng, TOPICS[topic])
        if text in seen:
            continue
        seen.add(text)
        rows.append({"id": f"s{len(rows) + 1:05d}", "text": text, "topic": topic})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("sentences.jsonl"))
    args = parser.parse_args()
    with args.out.open("w", encoding="utf-8", newline="\n") as f:
        for row in generate(args.count):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {args.count} sentences to {args.out}")


if __name__ == "__main__":
    main()
