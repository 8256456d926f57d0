# Reference values for the model-building chapter (bdf, Snijders & Bosker).
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_modelbuilding.R
# It reads data/bdf.csv and writes tests/reference/modelbuilding.json: lme4 fits
# (bobyqa, rhoend = 1e-12) of the chapter's models, with IQ_verb and ses centred
# within schools (x_within = x - school mean, x_mean = school mean, as
# mlmcourse.groups.center adds them), and performance's ICC and Nakagawa R2.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
  library(performance)
})

out_file <- file.path("tests", "reference", "modelbuilding.json")
bdf <- read.csv(file.path("data", "bdf.csv"), colClasses = c(schoolNR = "character"))
names(bdf) <- gsub(".", "_", names(bdf), fixed = TRUE)
stopifnot(nrow(bdf) == 2287, length(unique(bdf$schoolNR)) == 131)
for (x in c("IQ_verb", "ses")) {
  bdf[[paste0(x, "_mean")]] <- ave(bdf[[x]], bdf$schoolNR)
  bdf[[paste0(x, "_within")]] <- bdf[[x]] - bdf[[paste0(x, "_mean")]]
}
bdf$IQ_school <- bdf$IQ_verb_mean - mean(bdf$IQ_verb)
bdf$ses_school <- bdf$ses_mean - mean(bdf$ses)

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
fixed <- "langPOST ~ IQ_verb_within + IQ_school + ses_within + ses_school"
formulas <- list(
  mb_empty = "langPOST ~ 1 + (1 | schoolNR)",
  mb_fixed = paste(fixed, "+ (1 | schoolNR)"),
  mb_slope = paste(fixed, "+ (1 + IQ_verb_within | schoolNR)"),
  mb_maximal = paste(fixed, "+ (1 + IQ_verb_within + ses_within | schoolNR)")
)
fits <- lapply(formulas, function(f) suppressWarnings(lmer(as.formula(f), bdf, control = tight)))
record <- function(id) {
  m <- fits[[id]]
  vc <- as.data.frame(VarCorr(m), order = "cov.last")
  list(formula = formulas[[id]], loglik = as.numeric(logLik(m)), nobs = nobs(m),
       fixef = as.list(fixef(m)), std_error = as.list(sqrt(diag(as.matrix(vcov(m))))),
       vcov = vc$vcov, sdcor = vc$sdcor, singular = isSingular(m))
}
models <- setNames(lapply(names(fits), record), names(fits))
r2 <- performance::r2_nakagawa(fits$mb_fixed)
models$mb_empty$icc <- as.numeric(performance::icc(fits$mb_empty)$ICC_adjusted)
models$mb_fixed$r2_marginal <- as.numeric(r2$R2_marginal)
models$mb_fixed$r2_conditional <- as.numeric(r2$R2_conditional)
a <- anova(fits$mb_fixed, fits$mb_slope, refit = FALSE)
lrt <- list(m0 = "mb_fixed", m1 = "mb_slope", chisq = a$Chisq[2], df = a$Df[2])
out <- list(meta = list(r = R.version.string, lme4 = as.character(packageVersion("lme4")),
                        performance = as.character(packageVersion("performance")),
                        date = format(Sys.Date())),
            models = models, lrt = lrt)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_file)
cat("wrote", out_file, "\n")
