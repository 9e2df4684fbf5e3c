"""What a reader sees first: the rest of a multi-line message (`details`) and the algorithm's
own frame closest to where the error was raised (`innermost_own_frame`), for every runtime."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors.traces import Runtime, parse_error

_PIPE = """  File "/usr/local/bin/algorithmia-pipe", line 40, in get_response
    result = call_algorithm(request, algorithm)
  File "/usr/local/bin/algorithmia-pipe", line 90, in call_algorithm
    return algorithm.apply(data)
"""

PY_FFMPEG_WRAPPED = f"""error:
ffmpeg failed:
/srv/scratch/in.mp4: Invalid data found when processing input
stacktrace:
Some(Traceback (most recent call last):
  File "./src/video.py", line 22, in extract_frames
    subprocess.run(cmd, check=True, capture_output=True)
  File "/usr/local/lib/python3.12/subprocess.py", line 571, in run
    raise CalledProcessError(retcode, process.args,
subprocess.CalledProcessError: Command '['ffmpeg', '-i', '/srv/scratch/in.mp4', '/srv/scratch/f%04d.png']' returned non-zero exit status 1.

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
{_PIPE}  File "./src/image_tagger.py", line 31, in apply
    return TAGGER.tag(data)
  File "./src/tagger.py", line 58, in tag
    frames = video.extract_frames(path)
  File "./src/video.py", line 24, in extract_frames
    raise FrameExtractionError(f"ffmpeg failed:\\n{{exc.stderr.decode()}}") from exc
video.FrameExtractionError: ffmpeg failed:
/srv/scratch/in.mp4: Invalid data found when processing input

)"""  # noqa: E501

PY_MULTILINE_CAUSE = f"""error:
model 'resnet50' could not be loaded
stacktrace:
Some(Traceback (most recent call last):
  File "./src/models.py", line 61, in _load_resnet
    net.load_state_dict(checkpoint["state_dict"])
  File "/usr/local/lib/python3.9/site-packages/torch/nn/modules/module.py", line 1671, in load_state_dict
    raise RuntimeError('Error(s) in loading state_dict for {{}}:\\n\\t{{}}'.format(
RuntimeError: Error(s) in loading state_dict for ResNet:
\tsize mismatch for fc.bias: copying a param with shape torch.Size([1000]) from checkpoint, the shape in current model is torch.Size([91]).

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
{_PIPE}  File "./src/models.py", line 27, in get
    _cache[name] = _LOADERS[spec.kind](spec)
  File "./src/models.py", line 63, in _load_resnet
    raise ModelUnavailable(f"model {{spec.name!r}} could not be loaded")
models.ModelUnavailable: model 'resnet50' could not be loaded)"""  # noqa: E501

PY_PLATFORM_FAILS_WHILE_HANDLING = f"""error:
Object of type bytes is not JSON serializable
stacktrace:
Some(Traceback (most recent call last):
{_PIPE}  File "./src/image_tagger.py", line 31, in apply
    return TAGGER.tag(data)
  File "./src/options.py", line 19, in from_input
    raise InputError(b"threshold must be a number")
options.InputError: b'threshold must be a number'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/usr/local/bin/algorithmia-pipe", line 44, in get_response
    response = json.dumps(error_response(e))
  File "/usr/local/lib/python3.9/json/encoder.py", line 179, in default
    raise TypeError(f'Object of type {{o.__class__.__name__}} '
TypeError: Object of type bytes is not JSON serializable)"""

_RUNNER = """com.algorithmia.JarRunner$AlgorithmiaRunnerException: {cause}
\tat com.algorithmia.JarRunner$ErrorPair.registerNewException(JarRunner.java:245)
\tat com.algorithmia.JarRunner.tryJsonApply(JarRunner.java:118)
\tat com.algorithmia.Pipe.tryJsonApply(Pipe.java:135)
\tat com.algorithmia.Pipe.main(Pipe.java:101)
"""
_REFLECTION = """\tat sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tat sun.reflect.NativeMethodAccessorImpl.invoke(NativeMethodAccessorImpl.java:62)
\tat sun.reflect.DelegatingMethodAccessorImpl.invoke(DelegatingMethodAccessorImpl.java:43)
\tat java.lang.reflect.Method.invoke(Method.java:498)
\tat com.algorithmia.JarRunner.applyInput(JarRunner.java:145)
\tat com.algorithmia.JarRunner.tryAppliesInternal(JarRunner.java:99)
\tat com.algorithmia.JarRunner.tryJsonApplyInternal(JarRunner.java:133)
\tat com.algorithmia.JarRunner.tryJsonApply(JarRunner.java:116)
"""
_JACKSON = """com.fasterxml.jackson.databind.exc.MismatchedInputException: Cannot deserialize value of type `java.util.ArrayList<java.lang.String>` from Object value (token `JsonToken.START_OBJECT`)
 at [Source: (File); line: 3, column: 13] (through reference chain: algorithmia.image_tagger.Taxonomy["labels"])"""  # noqa: E501
_JACKSON_FRAMES = """\tat com.fasterxml.jackson.databind.exc.MismatchedInputException.from(MismatchedInputException.java:59)
\tat com.fasterxml.jackson.databind.DeserializationContext.reportInputMismatch(DeserializationContext.java:1741)
\tat com.fasterxml.jackson.databind.deser.std.CollectionDeserializer.handleNonArray(CollectionDeserializer.java:402)
\tat com.fasterxml.jackson.databind.deser.BeanDeserializer.deserialize(BeanDeserializer.java:177)
\tat com.fasterxml.jackson.databind.ObjectMapper.readValue(ObjectMapper.java:3494)
\tat algorithmia.image_tagger.Taxonomy.load(Taxonomy.java:28)
"""  # noqa: E501

JAVA_JACKSON = (
    f"error:\n{_JACKSON}\nstacktrace:\nSome("
    + _RUNNER.format(cause=_JACKSON)
    + f"Caused by: {_JACKSON}\n"
    + _JACKSON_FRAMES
    + "\tat algorithmia.image_tagger.image_tagger.apply(image_tagger.java:50)\n"
    + _REFLECTION
    + "\t... 2 more)"
)
_WRAPPER = "java.lang.IllegalStateException: taxonomy unreadable: /srv/app/taxonomy.json"
JAVA_WRAPPED_JACKSON = (
    f"error:\n{_WRAPPER}\nstacktrace:\nSome("
    + _RUNNER.format(cause=_WRAPPER)
    + f"Caused by: {_WRAPPER}\n"
    + "\tat algorithmia.image_tagger.image_tagger.apply(image_tagger.java:52)\n"
    + _REFLECTION
    + "\t... 2 more\n"
    + f"Caused by: {_JACKSON}\n"
    + _JACKSON_FRAMES
    + "\tat algorithmia.image_tagger.image_tagger.apply(image_tagger.java:50)\n"
    + "\t... 10 more)"
)

NODE_ASSERTION = """error:
AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:

3 !== 4

stacktrace:
Some(AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:

3 !== 4

    at checkChannels (/opt/algorithm/src/image_tagger.js:52:10)
    at Object.apply (/opt/algorithm/src/image_tagger.js:41:3)
    at start_call (/opt/algorithm/bin/pipe.js:11:19)
    at Interface.<anonymous> (/opt/algorithm/bin/pipe.js:89:9)
    at Interface.emit (node:events:519:28))"""

RUBY_CONVERT = """error:
`convert /srv/scratch/mini_magick20251123-7-1x2y3z.jpg -resize 256x256 /srv/scratch/thumb.jpg` failed with error:
 identify: improper image header `/srv/scratch/mini_magick20251123-7-1x2y3z.jpg' @ error/jpeg.c/JPEGErrorHandler/332.

stacktrace:
Some(/usr/local/bundle/gems/mini_magick-4.5.1/lib/mini_magick/shell.rb:17:in `run'
/usr/local/bundle/gems/mini_magick-4.5.1/lib/mini_magick/tool.rb:90:in `call'
/usr/local/bundle/gems/mini_magick-4.5.1/lib/mini_magick/image.rb:482:in `combine_options'
/opt/algorithm/src/thumbnails.rb:19:in `resize'
/opt/algorithm/src/image_tagger.rb:14:in `apply'
/opt/algorithm/bin/pipe.rb:48:in `call_algorithm'
/opt/algorithm/bin/pipe.rb:51:in `<main>')"""  # noqa: E501

R_WRAPPED = (
    "error:\nError in readPNG(path) : \n  file is not in PNG format\n\nstacktrace:\nSome(algorithm)"
)

SIZE_MISMATCH = (
    "\tsize mismatch for fc.weight: copying a param with shape torch.Size([1000, 2048]) from "
    "checkpoint, the shape in current model is torch.Size([91, 2048]).\n"
    "\tsize mismatch for fc.bias: copying a param with shape torch.Size([1000]) from "
    "checkpoint, the shape in current model is torch.Size([91])."
)


@pytest.mark.parametrize(
    ("error", "error_type", "runtime", "headline", "details"),
    [
        (PY_FFMPEG_WRAPPED, "AlgorithmError", Runtime.PYTHON,
         "video.FrameExtractionError: ffmpeg failed:",
         "/srv/scratch/in.mp4: Invalid data found when processing input"),
        # The final exception's message is one line; its cause's lines are not its details.
        (PY_MULTILINE_CAUSE, "AlgorithmError", Runtime.PYTHON,
         "models.ModelUnavailable: model 'resnet50' could not be loaded", ""),
        (JAVA_JACKSON, "AlgorithmError", Runtime.JAVA, _JACKSON.splitlines()[0],
         ' at [Source: (File); line: 3, column: 13] (through reference chain: '
         'algorithmia.image_tagger.Taxonomy["labels"])'),
        # The headline is the algorithm's wrapper, so the details are its (none).
        (JAVA_WRAPPED_JACKSON, "AlgorithmError", Runtime.JAVA, _WRAPPER, ""),
        (NODE_ASSERTION, "AlgorithmError", Runtime.NODE,
         "AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:", "3 !== 4"),
        (RUBY_CONVERT, "MiniMagick::Error", Runtime.RUBY,
         "`convert /srv/scratch/mini_magick20251123-7-1x2y3z.jpg -resize 256x256 "
         "/srv/scratch/thumb.jpg` failed with error:",
         " identify: improper image header `/srv/scratch/mini_magick20251123-7-1x2y3z.jpg' @ "
         "error/jpeg.c/JPEGErrorHandler/332."),
        (R_WRAPPED, "AlgorithmError", Runtime.R, "Error in readPNG(path) :",
         "  file is not in PNG format"),
    ],
)  # fmt: skip
def test_details_are_the_rest_of_the_headlines_message(
    error: str, error_type: str, runtime: Runtime, headline: str, details: str
) -> None:
    parsed = parse_error(error, error_type)
    assert parsed.runtime is runtime
    assert parsed.headline == headline
    assert parsed.details == details


@pytest.mark.parametrize(
    ("bug", "details"),
    [
        ("py-resnet-state-dict-size-mismatch", SIZE_MISMATCH),
        ("rb-minimagick-invalid-png-header",
         "identify: improper image header `/srv/scratch/mini_magick20251123-7-6stpeb.png' @ "
         "error/png.c/ReadPNGImage/4364."),
        ("rs-png-invalid-signature",
         "caused by: Format error decoding Png: Invalid PNG signature.\n"
         "caused by: Invalid PNG signature."),
        ("py-cv2-cvtcolor-empty-image", ""),  # one line, then a newline
        ("java-unsatisfiedlink-opencv", ""),
        ("node-axios-image-fetch-rejected", ""),
        ("node-timeout-string-rejection", ""),
    ],
)  # fmt: skip
def test_details_of_sample_records(
    sample_record_by_bug: dict[str, dict[str, Any]], bug: str, details: str
) -> None:
    record = sample_record_by_bug[bug]
    parsed = parse_error(record["error"], record["error_type"])
    assert parsed.details == details
    assert "\n" not in parsed.headline


def test_every_sample_record_has_details_without_the_headline(sample: dict[str, Any]) -> None:
    for record in sample["records"]:
        parsed = parse_error(record["error"], record["error_type"])
        assert parsed.details == parsed.details.strip("\n")
        assert not parsed.details or parsed.details.strip()
        if parsed.details:
            assert parsed.details.splitlines()[0].strip() not in parsed.headline


@pytest.mark.parametrize(
    ("error", "error_type", "location"),
    [
        # Python: the final exception's own frame, not its cause's (`matting.py` there).
        (PY_FFMPEG_WRAPPED, "AlgorithmError", "./src/video.py:24 in extract_frames"),
        (PY_MULTILINE_CAUSE, "AlgorithmError", "./src/models.py:63 in _load_resnet"),
        # …falling back to the cause when the final exception has no own frame.
        (PY_PLATFORM_FAILS_WHILE_HANDLING, "AlgorithmError", "./src/options.py:19 in from_input"),
        # Java: the deepest cause's own frame (the call that failed), not the `catch` in `apply`.
        (JAVA_WRAPPED_JACKSON, "AlgorithmError",
         "Taxonomy.java:28 in algorithmia.image_tagger.Taxonomy.load"),
        (JAVA_JACKSON, "AlgorithmError",
         "Taxonomy.java:28 in algorithmia.image_tagger.Taxonomy.load"),
        (NODE_ASSERTION, "AlgorithmError",
         "/opt/algorithm/src/image_tagger.js:52 in checkChannels"),
        (RUBY_CONVERT, "MiniMagick::Error", "/opt/algorithm/src/thumbnails.rb:19 in resize"),
    ],
)  # fmt: skip
def test_innermost_own_frame(error: str, error_type: str, location: str) -> None:
    frame = parse_error(error, error_type).innermost_own_frame
    assert frame is not None
    assert frame.location() == location


@pytest.mark.parametrize(
    ("bug", "location"),
    [
        ("py-vitmatte-channel-mismatch", "./src/pipeline.py:75 in _run_stage"),
        ("py-s3-image-not-found", "./src/storage.py:46 in fetch"),
        # The deepest cause has library frames only: the headline's exception's own frame.
        ("java-unsatisfiedlink-opencv",
         "Thumbnailer.java:33 in algorithmia.image_tagger.Thumbnailer.decode"),
        ("node-undefined-width-fitbox", "/opt/algorithm/src/geometry.js:22 in fitBox"),
        ("rb-enoent-thumbnail-upload",
         "/opt/algorithm/src/file_util.rb:11 in upload_to_cloudinary"),
        ("node-axios-image-fetch-rejected", None),
        ("rs-png-invalid-signature", None),
    ],
)  # fmt: skip
def test_innermost_own_frame_of_sample_records(
    sample_record_by_bug: dict[str, dict[str, Any]], bug: str, location: str | None
) -> None:
    record = sample_record_by_bug[bug]
    frame = parse_error(record["error"], record["error_type"]).innermost_own_frame
    assert (frame.location() if frame is not None else None) == location


def test_the_headline_exception_is_the_one_the_headline_names() -> None:
    java = parse_error(JAVA_WRAPPED_JACKSON, "AlgorithmError")
    assert java.headline_exception is java.chain[1]
    assert java.exception_types[0].startswith("com.algorithmia.")
    python = parse_error(PY_MULTILINE_CAUSE, "AlgorithmError")
    assert python.headline_exception is python.chain[-1]
    assert parse_error("", "AlgorithmError").details == ""
