# The course's data sets in R, prepared exactly as mlmcourse.load() prepares them.
#
# Sourced by the make_reference*.R scripts, which run from the repository root:
#     source(file.path("tests", "reference", "course_data.R"))
# It defines `registry` (data/datasets.json), read_course_csv() and load_course():
#   * ids, files and subsets come from data/datasets.json;
#   * id columns are character;
#   * every other quoted column is a factor whose levels are sorted in
#     code-point ("C") order, the order Python's sorted() gives;
#   * unquoted columns are numbers;
#   * "." in column names becomes "_".

suppressPackageStartupMessages(library(jsonlite))
invisible(Sys.setlocale("LC_COLLATE", "C"))

data_dir <- "data"
if (!file.exists(file.path(data_dir, "datasets.json"))) {
  stop("run the reference scripts from the repository root (Rscript tests/reference/<script>.R)")
}
registry <- fromJSON(file.path(data_dir, "datasets.json"), simplifyVector = TRUE)

read_course_csv <- function(filename, ids) {
  path <- file.path(data_dir, filename)
  # Which columns are quoted in the file? (read.csv alone would turn the
  # quoted strings "0"/"1" into numbers; the Python loader keeps them as text.)
  raw <- read.csv(path, quote = "", colClasses = "character", check.names = FALSE)
  quoted <- vapply(raw, function(v) all(grepl('^".*"$', v)), logical(1))
  d <- read.csv(path, stringsAsFactors = FALSE, check.names = FALSE,
                colClasses = unname(ifelse(quoted, "character", NA_character_)))
  names(d) <- gsub(".", "_", names(d), fixed = TRUE)
  for (col in names(d)) {
    v <- d[[col]]
    if (col %in% ids) {
      d[[col]] <- if (is.numeric(v)) as.character(as.integer(v)) else as.character(v)
    } else if (is.character(v)) {
      d[[col]] <- factor(v, levels = sort(unique(v), method = "radix"))
    }
  }
  d
}

load_course <- function(name) {
  spec <- registry[[name]]
  frames <- lapply(spec$files, read_course_csv, ids = spec$ids)
  d <- frames[[1]]
  if (length(frames) == 2) { # hsb: left join of the school file (without MEANSES)
    schools <- frames[[2]]
    schools$MEANSES <- NULL
    idx <- match(d$School, schools$School)
    stopifnot(!anyNA(idx), !anyDuplicated(schools$School))
    for (col in setdiff(names(schools), "School")) d[[col]] <- schools[[col]][idx]
  }
  if (!is.null(spec$subset)) d <- d[d[[spec$group]] %in% spec$subset, , drop = FALSE]
  rownames(d) <- NULL
  d
}
