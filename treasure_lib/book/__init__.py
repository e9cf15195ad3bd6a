"""The study book: executed run folders rendered as a Jupyter Book (HTML) for the group meeting.

`build` builds it (`build_book`, the `treasure book` command), `assemble` writes its source pages, `results` the
results page's headline numbers, `main` is `make book` (samples, both studies, the book), `screenshots` photographs
the built pages in a headless browser.
"""
